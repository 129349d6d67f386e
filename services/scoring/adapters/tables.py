"""Scoring's schema: customer facts, the current score per customer and versioned models."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from libs.common.aliases import CustomerAliases
from libs.common.db import MessagingTables
from libs.common.erasures import ErasureRecords

SCHEMA = "scoring"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)
aliases = CustomerAliases(metadata)
erasures = ErasureRecords(metadata)

facts = Table(
    "facts",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("first_purchase_at", DateTime(timezone=True)),
    Column("last_purchase_at", DateTime(timezone=True)),
    Column("purchase_count", Integer, nullable=False, server_default="0"),
    Column("total_spend", Double, nullable=False, server_default="0"),
    Column("typical_interval_days", Double),
    Column("last_login_at", DateTime(timezone=True)),
    Column("login_ratio_30_90", Double),
    Column("purchase_ratio_30_90", Double),
    Column("spend_ratio_30_90", Double),
    Column("open_tickets", Integer, nullable=False, server_default="0"),
    Column("last_complaint_at", DateTime(timezone=True)),
    Column("recent_complaints", Integer, nullable=False, server_default="0"),
    Column("sla_breached_at", DateTime(timezone=True)),
    Column("last_nps", Integer),
    Column("last_nps_at", DateTime(timezone=True)),
    Column("profile_at", DateTime(timezone=True)),
    Column("last_event_at", DateTime(timezone=True)),
    Column("purchase_days", Integer, nullable=False, server_default="0"),
    Column("repeat_day_spend", Double, nullable=False, server_default="0"),
    Column("profile_version", BigInteger),
    Column("complaints", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every order scoring has seen, one row per (customer, order id) whatever the number of deliveries: the BTYD
# summaries (purchase days, repeat-day spend) are computed from these, so they do not depend on arrival order.
purchases = Table(
    "purchases",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("order_id", Text, primary_key=True),
    Column("purchased_at", DateTime(timezone=True), nullable=False),
    Column("amount", Double, nullable=False),
    Column("event_id", Text, nullable=False),
)

# Every refund scoring has seen (one row per refund event; refunds carry no id of their own). An order's net amount
# is its amount less its refunds, floored at 0; an order refunded in full is no transaction. Whichever of an order and
# its refund arrives first, the summaries come out the same.
refunds = Table(
    "refunds",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("order_id", Text, nullable=False),
    Column("refunded_at", DateTime(timezone=True), nullable=False),
    Column("amount", Double, nullable=False),
    Column("refund_id", Text),  # upstream's id of the refund, when it sends one: the business key of a refund
    Index("refunds_order", "customer_id", "order_id"),
)

# One row: the newest event time ever seen, the replay clock. A watermark of its own rather than
# max(facts.last_event_at) so that erasing the newest customer does not move the clock backwards.
clock = Table(
    "clock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("newest_event_at", DateTime(timezone=True)),
)

scores = Table(
    "scores",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("tier", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("churn_risk", Double, nullable=False),
    Column("clv", Double),
    Column("model_version", BigInteger),
    Column("score", JSONB, nullable=False),  # the full document served by the API (policy.score_document)
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # the list API filters on these and pages by customer_id
    Index("scores_tier_customer", "tier", "customer_id"),
    Index("scores_stage_customer", "stage", "customer_id"),
    Index("scores_churn_risk", "churn_risk"),
)

models = Table(
    "models",
    metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=True),
    Column("fitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("n_customers", Integer, nullable=False),
    Column("n_buyers", Integer, nullable=False),
    Column("n_unique_triples", Integer, nullable=False),
    Column("small_base", Boolean, nullable=False),
    Column("bgnbd", JSONB),  # {"r", "alpha", "a", "b"}, alpha in days; null when not fitted/unusable
    Column("gamma_gamma", JSONB),  # {"p", "q", "v"}
    Column("rfm_edges", JSONB, nullable=False),  # {"recency": [4], "frequency": [4], "monetary": [4]}
    Column("rfm_rank", ARRAY(Double), nullable=False),  # rank reference of the RFM composite
    Column("clv_rank", ARRAY(Double)),  # rank reference of CLV
    Column("diagnostics", JSONB, nullable=False),  # fit timings, convergence, who triggered it
    Column("chosen_model", Text),  # the purchase model that drives P(alive), expected purchases and CLV
    Column("candidates", JSONB),  # every purchase model fitted: params, log-likelihood, holdout error
    Column("holdout", JSONB),  # calibration/holdout split and predicted vs actual repeat purchases
)

# Append-only: one row per material change of a customer's score, keyed by the id of the score.changed event it
# went out as, so a reprocessed cause adds nothing. Erasure deletes a customer's rows with the rest.
score_history = Table(
    "score_history",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),  # the cause's time: event, due time or refit clock
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("trigger", Text, nullable=False),  # event, refit or due
    Column("cause_id", Text, nullable=False),
    Column("model_version", BigInteger),
    Column("changes", ARRAY(Text), nullable=False),
    Column("tier", Text, nullable=False),
    Column("stage", Text, nullable=False),
    Column("churn_risk", Double, nullable=False),
    Column("clv", Double),
    Column("previous", JSONB),  # tier, stage, churn_risk, clv before the change; null on a first score
    Column("reasons", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("score_history_page", "customer_id", "at", "event_id"),
    Index("score_history_at", "at"),
)

# The next instant each customer's score changes with no event at all (a lifecycle boundary, the no-login
# threshold, a complaint or SLA breach leaving its window); the due-time scheduler claims rows that are due.
due_times = Table(
    "due_times",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Index("due_times_due_at", "due_at"),
)
