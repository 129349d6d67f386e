"""Insights' schema: the purchases, scores and survey answers it counts, and the figures derived from them.

`purchases` (one row per order id) and `refunds` are the truth for commerce; `customer_days` folds the orders, net
of their refunds, per customer and UTC day (with the customer's previous purchase day, for repurchase gaps) and
`customers` holds each first purchase day.
`period_figures` and `cohort_cells` are recomputed from those for the periods listed in `dirty_periods`, so a
late or corrected purchase changes exactly the periods it belongs to.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.aliases import CustomerAliases
from libs.common.db import MessagingTables

SCHEMA = "insights"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)
# Ids profile joined to a customer: their events count under that customer.
aliases = CustomerAliases(metadata)

purchases = Table(
    "purchases",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("purchased_at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("amount", Numeric, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("coupon_code", Text),
    Index("purchases_customer_day", "customer_id", "day"),
    # Coupon use of the churned-customers report reads only the orders that carry a coupon.
    Index("purchases_coupon", "customer_id", "purchased_at", postgresql_where=text("coupon_code IS NOT NULL")),
)

# One row per refund event (a redelivery is the same row); matched to its order by order id whichever arrives first.
# A refund is netted off its order's amount in the order's own period; an order refunded in full is no purchase.
refunds = Table(
    "refunds",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("refunded_at", DateTime(timezone=True), nullable=False),
    Column("amount", Numeric, nullable=False),
    Index("refunds_order", "order_id"),
    Index("refunds_customer", "customer_id"),
)

customer_days = Table(
    "customer_days",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("amount", Numeric, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("prev_day", Date),
    # Covering: a period's active customers, revenue and repurchase gaps come from an index-only range scan.
    Index("customer_days_day", "day", postgresql_include=["customer_id", "amount", "prev_day"]),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("first_day", Date, nullable=False),
)

scores = Table(
    "scores",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("scored_at", DateTime(timezone=True), primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("tier", Text),
    Column("clv", Float),
    Column("stage", Text),
    Column("reasons", JSONB),
    Index("scores_scored_at", "scored_at"),
)

# Each customer's scores with a stage folded into runs of the same stage and tier, rebuilt from their scores whenever
# one arrives: the stage at a moment T is that of the run with since < T <= until (until NULL: still running), the
# same as the last score before T, without sorting every score.
stage_runs = Table(
    "stage_runs",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("since", DateTime(timezone=True), primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("until", DateTime(timezone=True)),
    Column("stage", Text, nullable=False),
    Column("tier", Text),
)

# Each customer's latest profile (highest `version` of `profile.updated`): the traits the churn report compares.
customer_traits = Table(
    "customer_traits",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("favourite_category", Text),
    Column("region", Text),
    Column("channel", Text),
    Column("open_tickets", Integer, nullable=False),
    Column("last_nps", Integer),
    Column("last_login_at", DateTime(timezone=True)),
    Column("last_purchase_at", DateTime(timezone=True)),
)

# One row per closed period whose churn report was announced: `churn.report_ready` is emitted when it is written.
churn_reports = Table(
    "churn_reports",
    metadata,
    Column("grain", Text, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("churned", Integer, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("announced_at", DateTime(timezone=True), nullable=False),
)

# The counts of a churned-customers report as last computed; deleted when a score before the period's end, an
# erasure or a join changes them, recomputed when older than the configured age (traits are not tracked: they
# are the latest profile as of the computation). A row is claimed (`token`, no counts) before counting: counts
# are kept only if no change deleted the claim meanwhile.
churn_report_counts = Table(
    "churn_report_counts",
    metadata,
    Column("grain", Text, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("period_end_at", DateTime(timezone=True), nullable=False),
    Column("token", Text, nullable=False),
    Column("counts", JSONB),
    Column("computed_at", DateTime(timezone=True)),
)

survey_scores = Table(
    "survey_scores",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False),
    Column("kind", Text, nullable=False),
    Column("score", Integer, nullable=False),
    Index("survey_scores_answered_at", "answered_at"),
    Index("survey_scores_customer", "customer_id"),
)

# Events up to `erased_at` describe an erased person and are dropped, so a redelivery or replay cannot count them.
erasures = Table(
    "erasures",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# One row: the newest event time consumed, the "now" of replay mode.
clock = Table(
    "clock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("newest_event_at", DateTime(timezone=True), nullable=False),
)

# `mark` changes with every marking, so a recompute that read an older mark leaves the row for the next one.
dirty_periods = Table(
    "dirty_periods",
    metadata,
    Column("grain", Text, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("mark", Text, nullable=False),
)

period_figures = Table(
    "period_figures",
    metadata,
    Column("grain", Text, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("counts", JSONB, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False),
    # Whether anomalies were looked for since the figures were last computed on a closed period.
    Column("anomalies_checked", Boolean, nullable=False, server_default="false"),
)

cohort_cells = Table(
    "cohort_cells",
    metadata,
    Column("grain", Text, primary_key=True),
    Column("cohort_start", Date, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("active", Integer, nullable=False),
    Column("revenue", Numeric, nullable=False),
    Index("cohort_cells_period", "grain", "period_start"),
)

# One row per KPI and period that deviated: the event is emitted once, when the row is first written.
kpi_anomalies = Table(
    "kpi_anomalies",
    metadata,
    Column("grain", Text, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("kpi", Text, primary_key=True),
    Column("value", Float, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("deviation", Float, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
)

# The last fit's clusters (centre in the features' units and in standard deviations) and each customer's cluster.
clusters = Table(
    "clusters",
    metadata,
    Column("segment", Text, primary_key=True),
    Column("customers", Integer, nullable=False),
    Column("centre", JSONB, nullable=False),
    Column("z", JSONB, nullable=False),
    Column("description", Text, nullable=False),
    Column("fit_id", Text, nullable=False),
    Column("k", Integer, nullable=False),
    Column("silhouette", Float),
    Column("fitted_at", DateTime(timezone=True), nullable=False),
)

cluster_members = Table(
    "cluster_members",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("segment", Text, nullable=False),
)
