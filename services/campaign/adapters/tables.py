"""Campaign's schema. Every external effect is a row in `actions`, unique by its idempotency key."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.aliases import CustomerAliases
from libs.common.db import MessagingTables
from libs.common.erasures import ErasureRecords

SCHEMA = "campaign"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)
# Ids that profile joined to a customer: what campaign held under them moved there, and their events count there.
aliases = CustomerAliases(metadata)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    # The validated CampaignDefinition as JSON; `status` is copied out so active ones are found fast.
    Column("definition", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("builtin", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# What campaign knows about a customer, built from events only (never from another service's tables).
customer_facts = Table(
    "customer_facts",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("name", Text),
    Column("email", Text),
    Column("phone", Text),
    Column("favourite_category", Text),
    Column("region", Text),
    Column("timezone", Text),
    Column("birthday", Date),
    Column("consents", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("segments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("opted_out", Boolean, nullable=False, server_default=text("false")),
    Column("tier", Text),
    Column("stage", Text),
    Column("churn_risk", Text),
    Column("predicted_next_purchase_at", DateTime(timezone=True)),
    Column("first_purchase_at", DateTime(timezone=True)),
    Column("last_purchase_at", DateTime(timezone=True)),
    Column("last_activity_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

actions = Table(
    "actions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    Column("campaign_id", Text, nullable=False),
    Column("kind", Text, nullable=False),  # coupon | message | alert | holdout
    Column("channel", Text),
    Column("variant", Text),
    # issued (coupon) | pending -> sent / failed (message, alert) | deferred (quiet hours) | skipped
    Column("status", Text, nullable=False),
    Column("reason", Text),
    Column("payload", JSONB, nullable=False),
    Column("trigger", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("last_error", Text),
    # `decided_at` is the business time of the decision (event time when replaying), used by the guards.
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("actions_customer", "customer_id"),
    Index("actions_campaign", "campaign_id", "status"),
    Index("actions_due", "next_attempt_at", postgresql_where=text("status IN ('pending', 'deferred')")),
)

coupons = Table(
    "coupons",
    metadata,
    Column("code", Text, primary_key=True),
    Column("action_id", BigInteger, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    Column("campaign_id", Text, nullable=False),
    Column("variant", Text),
    Column("discount_type", Text, nullable=False),
    Column("value", Numeric(18, 4), nullable=False),
    Column("currency", Text),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("redeemed_at", DateTime(timezone=True)),
    Column("redeemed_order_id", Text),
    Index("coupons_customer", "customer_id"),
)

# A/B audience: who a campaign reached (or held out), and when; conversions are counted from here.
assignments = Table(
    "assignments",
    metadata,
    Column("campaign_id", Text, primary_key=True),
    Column("customer_id", Text, primary_key=True),
    Column("variant", Text, nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)

purchases = Table(
    "purchases",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("order_id", Text, primary_key=True),
    Column("amount", Numeric(18, 4), nullable=False),
    Column("currency", Text),
    Column("purchased_at", DateTime(timezone=True), nullable=False),
    Column("coupon_code", Text),
    Column("refunded", Boolean, nullable=False, server_default=text("false")),
)

loyalty_accounts = Table(
    "loyalty_accounts",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("points", BigInteger, nullable=False, server_default=text("0")),
    Column("level", Text, nullable=False, server_default=text("'normal'")),
    Column("rolling_spend", Numeric(18, 4), nullable=False, server_default=text("0")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

scheduled_triggers = Table(
    "scheduled_triggers",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("campaign_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("fire_at", DateTime(timezone=True), nullable=False),
    Column("window", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),  # pending | fired | cancelled
    Column("fired_at", DateTime(timezone=True)),
    UniqueConstraint("campaign_id", "customer_id", "window", name="scheduled_triggers_once"),
    Index("scheduled_due", "fire_at", postgresql_where=text("status = 'pending'")),
    Index("scheduled_customer", "customer_id"),
)

# Customers erased (`customer.erased`) and when: no event of theirs from before that instant, whatever its order or
# topic, recreates facts or issues anything (libs.common.erasures).
erasures = ErasureRecords(metadata)
