"""A period's purchase days read from the index alone: its day range with customer, amount and previous day."""

from alembic import op

revision = "insights_0010"
down_revision = "insights_0009"

SCHEMA = "insights"


def upgrade() -> None:
    op.drop_index("customer_days_day", "customer_days", schema=SCHEMA)
    op.create_index(
        "customer_days_day",
        "customer_days",
        ["day"],
        schema=SCHEMA,
        postgresql_include=["customer_id", "amount", "prev_day"],
    )


def downgrade() -> None:
    op.drop_index("customer_days_day", "customer_days", schema=SCHEMA)
    op.create_index("customer_days_day", "customer_days", ["day"], schema=SCHEMA)
