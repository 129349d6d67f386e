"""Refunds: one row per refund event, netted off its order when purchase days are derived."""

import sqlalchemy as sa
from alembic import op

revision = "insights_0007"
down_revision = "insights_0006"

SCHEMA = "insights"


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Numeric, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("refunds_order", "refunds", ["order_id"], schema=SCHEMA)
    op.create_index("refunds_customer", "refunds", ["customer_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("refunds", schema=SCHEMA)
