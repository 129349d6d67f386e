"""Purchases indexed by (customer, day): a customer's days are rebuilt from the earliest changed day on, not whole.

Builds the new index and drops the old one on `insights.purchases` (locks writes to it while building).
"""

from alembic import op

revision = "insights_0003"
down_revision = "insights_0002"

SCHEMA = "insights"


def upgrade() -> None:
    op.create_index("purchases_customer_day", "purchases", ["customer_id", "day"], schema=SCHEMA)
    op.drop_index("purchases_customer", table_name="purchases", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("purchases_customer", "purchases", ["customer_id"], schema=SCHEMA)
    op.drop_index("purchases_customer_day", table_name="purchases", schema=SCHEMA)
