"""contacts: outreach by account managers and retention teams, one row per contact."""

import sqlalchemy as sa
from alembic import op

revision = "feedback_0007"
down_revision = "feedback_0006"

SCHEMA = "feedback"


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("contact_key", sa.Text, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("contacted_by", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("contacts_customer_at", "contacts", ["customer_id", "contacted_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("contacts", schema=SCHEMA)
