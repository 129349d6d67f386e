"""Scoring: scores, inbox and outbox."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.migrations import create_messaging_tables

revision = "scoring_0001"
down_revision = None

SCHEMA = "scoring"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    op.create_table(
        "scores",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("facts", JSONB, nullable=False),
        sa.Column("score", JSONB, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("scores", schema=SCHEMA)
