"""Insights: purchases, purchase days, first purchases, scores, survey answers, erasures, clock, figures."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.migrations import create_messaging_tables, outbox_rows_deleted_on_publish

revision = "insights_0001"
down_revision = None

SCHEMA = "insights"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    outbox_rows_deleted_on_publish(SCHEMA)
    op.create_table(
        "purchases",
        sa.Column("order_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("purchases_customer", "purchases", ["customer_id"], schema=SCHEMA)
    op.create_table(
        "customer_days",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("orders", sa.Integer, nullable=False),
        sa.Column("prev_day", sa.Date),
        schema=SCHEMA,
    )
    op.create_index("customer_days_day", "customer_days", ["day"], schema=SCHEMA)
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("first_day", sa.Date, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "scores",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text),
        sa.Column("clv", sa.Float),
        schema=SCHEMA,
    )
    op.create_table(
        "survey_scores",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("survey_scores_answered_at", "survey_scores", ["answered_at"], schema=SCHEMA)
    op.create_index("survey_scores_customer", "survey_scores", ["customer_id"], schema=SCHEMA)
    op.create_table(
        "erasures",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "clock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("newest_event_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "dirty_periods",
        sa.Column("grain", sa.Text, primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("mark", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "period_figures",
        sa.Column("grain", sa.Text, primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("counts", JSONB, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anomalies_checked", sa.Boolean, nullable=False, server_default="false"),
        schema=SCHEMA,
    )
    op.create_table(
        "cohort_cells",
        sa.Column("grain", sa.Text, primary_key=True),
        sa.Column("cohort_start", sa.Date, primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("active", sa.Integer, nullable=False),
        sa.Column("revenue", sa.Numeric, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("cohort_cells_period", "cohort_cells", ["grain", "period_start"], schema=SCHEMA)
    op.create_table(
        "kpi_anomalies",
        sa.Column("grain", sa.Text, primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("kpi", sa.Text, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("baseline", sa.Float, nullable=False),
        sa.Column("deviation", sa.Float, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "kpi_anomalies",
        "cohort_cells",
        "period_figures",
        "dirty_periods",
        "clock",
        "erasures",
        "survey_scores",
        "scores",
        "customers",
        "customer_days",
        "purchases",
        "outbox",
        "inbox",
    ):
        op.drop_table(table, schema=SCHEMA)
