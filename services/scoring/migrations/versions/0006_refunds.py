"""Refunds, kept per event like purchases are per order: they net the order they name off the BTYD summaries."""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0006"
down_revision = "scoring_0005"

SCHEMA = "scoring"


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text, nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.Double, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("refunds_order", "refunds", ["customer_id", "order_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("refunds", schema=SCHEMA)
