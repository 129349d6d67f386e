"""Campaign: actions, inbox and outbox."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.migrations import create_messaging_tables

revision = "campaign_0001"
down_revision = None

SCHEMA = "campaign"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    op.create_table(
        "actions",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.Text, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("campaign_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("actions_customer", "actions", ["customer_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("actions", schema=SCHEMA)
