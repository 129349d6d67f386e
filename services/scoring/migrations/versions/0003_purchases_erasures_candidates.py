"""Scoring keeps its own purchases (order-independent BTYD summaries), erasure records, customer aliases,
the profile version each customer's metrics came from, and every candidate model of a refit."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.migrations import (
    create_customer_aliases,
    create_customer_erasures,
    drop_customer_aliases,
    drop_customer_erasures,
)

revision = "scoring_0003"
down_revision = "scoring_0002"

SCHEMA = "scoring"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "purchases",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("purchased_at", ts, nullable=False),
        sa.Column("amount", sa.Double, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    create_customer_aliases(SCHEMA)
    create_customer_erasures(SCHEMA)
    op.add_column("facts", sa.Column("purchase_days", sa.Integer, nullable=False, server_default="0"), schema=SCHEMA)
    op.add_column("facts", sa.Column("repeat_day_spend", sa.Double, nullable=False, server_default="0"), schema=SCHEMA)
    op.add_column("facts", sa.Column("profile_version", sa.BigInteger), schema=SCHEMA)
    op.add_column("models", sa.Column("chosen_model", sa.Text), schema=SCHEMA)
    op.add_column("models", sa.Column("candidates", JSONB), schema=SCHEMA)
    op.add_column("models", sa.Column("holdout", JSONB), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("models", "holdout", schema=SCHEMA)
    op.drop_column("models", "candidates", schema=SCHEMA)
    op.drop_column("models", "chosen_model", schema=SCHEMA)
    op.drop_column("facts", "profile_version", schema=SCHEMA)
    op.drop_column("facts", "repeat_day_spend", schema=SCHEMA)
    op.drop_column("facts", "purchase_days", schema=SCHEMA)
    drop_customer_erasures(SCHEMA)
    drop_customer_aliases(SCHEMA)
    op.drop_table("purchases", schema=SCHEMA)
