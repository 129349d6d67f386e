"""What the churned-customers report reads: each score's stage and reasons, each customer's latest profile traits,
whether an order used a coupon, and the reports announced (once per period)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "insights_0004"
down_revision = "insights_0003"

SCHEMA = "insights"


def upgrade() -> None:
    op.add_column("scores", sa.Column("stage", sa.Text), schema=SCHEMA)
    op.add_column("scores", sa.Column("reasons", JSONB), schema=SCHEMA)
    op.add_column("purchases", sa.Column("coupon_code", sa.Text), schema=SCHEMA)
    op.create_table(
        "customer_traits",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("favourite_category", sa.Text),
        sa.Column("region", sa.Text),
        sa.Column("channel", sa.Text),
        sa.Column("open_tickets", sa.Integer, nullable=False),
        sa.Column("last_nps", sa.Integer),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.Column("last_purchase_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.create_table(
        "churn_reports",
        sa.Column("grain", sa.Text, primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("churned", sa.Integer, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("churn_reports", schema=SCHEMA)
    op.drop_table("customer_traits", schema=SCHEMA)
    op.drop_column("purchases", "coupon_code", schema=SCHEMA)
    op.drop_column("scores", "reasons", schema=SCHEMA)
    op.drop_column("scores", "stage", schema=SCHEMA)
