"""Scoring: customer facts, scores, versioned models, inbox and outbox."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from libs.common.migrations import create_messaging_tables

revision = "scoring_0001"
down_revision = None

SCHEMA = "scoring"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "facts",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("first_purchase_at", ts),
        sa.Column("last_purchase_at", ts),
        sa.Column("purchase_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total_spend", sa.Double, nullable=False, server_default="0"),
        sa.Column("typical_interval_days", sa.Double),
        sa.Column("last_login_at", ts),
        sa.Column("login_ratio_30_90", sa.Double),
        sa.Column("purchase_ratio_30_90", sa.Double),
        sa.Column("spend_ratio_30_90", sa.Double),
        sa.Column("open_tickets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_complaint_at", ts),
        sa.Column("recent_complaints", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sla_breached_at", ts),
        sa.Column("last_nps", sa.Integer),
        sa.Column("last_nps_at", ts),
        sa.Column("profile_at", ts),
        sa.Column("last_event_at", ts),
        sa.Column("updated_at", ts, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "clock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("newest_event_at", ts),
        schema=SCHEMA,
    )
    op.execute(f"INSERT INTO {SCHEMA}.clock (id, newest_event_at) VALUES (1, NULL)")
    op.create_table(
        "scores",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("churn_risk", sa.Double, nullable=False),
        sa.Column("clv", sa.Double),
        sa.Column("model_version", sa.BigInteger),
        sa.Column("score", JSONB, nullable=False),
        sa.Column("as_of", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("scores_tier_customer", "scores", ["tier", "customer_id"], schema=SCHEMA)
    op.create_index("scores_stage_customer", "scores", ["stage", "customer_id"], schema=SCHEMA)
    op.create_index("scores_churn_risk", "scores", ["churn_risk"], schema=SCHEMA)
    op.create_table(
        "models",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("fitted_at", ts, nullable=False, server_default=sa.func.now()),
        sa.Column("as_of", ts, nullable=False),
        sa.Column("n_customers", sa.Integer, nullable=False),
        sa.Column("n_buyers", sa.Integer, nullable=False),
        sa.Column("n_unique_triples", sa.Integer, nullable=False),
        sa.Column("small_base", sa.Boolean, nullable=False),
        sa.Column("bgnbd", JSONB),
        sa.Column("gamma_gamma", JSONB),
        sa.Column("rfm_edges", JSONB, nullable=False),
        sa.Column("rfm_rank", ARRAY(sa.Double), nullable=False),
        sa.Column("clv_rank", ARRAY(sa.Double)),
        sa.Column("diagnostics", JSONB, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("models", schema=SCHEMA)
    op.drop_table("scores", schema=SCHEMA)
    op.drop_table("clock", schema=SCHEMA)
    op.drop_table("facts", schema=SCHEMA)
