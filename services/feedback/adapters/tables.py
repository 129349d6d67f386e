"""Feedback's schema: tickets with their SLA state, breaches, agents, surveys, tokens, responses, customers."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.aliases import CustomerAliases
from libs.common.db import MessagingTables
from libs.common.erasures import ErasureGuard, ErasureRecords

SCHEMA = "feedback"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)
# Ids that profile joined to a customer: feedback's rows under them moved there, and their events count there.
aliases = CustomerAliases(metadata)
# Ids erased on request: events about them from before the erasure change nothing.
erasures = ErasureRecords(metadata)
erasure_guard = ErasureGuard(aliases, erasures)

tickets = Table(
    "tickets",
    metadata,
    Column("ticket_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("timeline", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("channel", Text, nullable=False, server_default="web"),
    Column("text", Text, nullable=False, server_default=""),
    # The customer's tier when the ticket was opened: the SLA promised then is the one we are held to.
    Column("tier", Text, nullable=False, server_default="low"),
    Column("queue", Text, nullable=False, server_default="general"),
    Column("agent_id", Text),
    Column("first_response_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    Column("status_history", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # Earliest deadline of a running, not yet breached clock; NULL when nothing can breach without a change.
    Column("sla_due_at", DateTime(timezone=True)),
    Index("tickets_customer", "customer_id"),
    Index("tickets_sla_due", "sla_due_at", postgresql_where=text("sla_due_at IS NOT NULL")),
    Index("tickets_agent_open", "agent_id", postgresql_where=text("status NOT IN ('resolved', 'closed')")),
    Index("tickets_opened_at", "opened_at"),
)

# One row per (ticket, clock): the primary key is what makes `sla.breached` go out exactly once.
sla_breaches = Table(
    "sla_breaches",
    metadata,
    Column("ticket_id", Text, primary_key=True),
    Column("clock", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("tier", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("target_s", BigInteger, nullable=False),
    Column("elapsed_s", BigInteger, nullable=False),
    Column("breached_at", DateTime(timezone=True), nullable=False),
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Index("sla_breaches_customer", "customer_id"),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("skills", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("max_load", Integer, nullable=False),
    Column("online", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

surveys = Table(
    "surveys",
    metadata,
    Column("survey_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),  # nps | csat: the score a response must carry
    Column("question", Text, nullable=False, server_default=""),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every link we issued, by nonce: `used_at` set once makes a token single-use; erasure deletes the row,
# which also revokes a link still in the customer's inbox.
survey_tokens = Table(
    "survey_tokens",
    metadata,
    Column("nonce", Text, primary_key=True),
    Column("survey_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Index("survey_tokens_customer", "customer_id"),
)

survey_responses = Table(
    "survey_responses",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # The cause: ce_id of a survey.response event, or "token:<nonce>" for a link; unique = recorded once.
    Column("response_key", Text, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    Column("survey_id", Text),
    Column("nps", SmallInteger),
    Column("csat", SmallInteger),
    Column("comment", Text),
    Column("sentiment", Text, nullable=False),
    Column("sentiment_score", Float, nullable=False),
    # Snapshot of the customer's tier and segments when they answered, so reports by tier are as lived.
    Column("tier", Text),
    Column("segments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("channel", Text, nullable=False),  # event | link
    Column("responded_at", DateTime(timezone=True), nullable=False),
    Index("survey_responses_customer", "customer_id"),
    Index("survey_responses_at", "responded_at"),
)

# Outreach by account managers and retention teams ("contacted about their churn risk"): a service interaction
# like a ticket, announced as `feedback.contacted` so other services can hold back their own outreach.
contacts = Table(
    "contacts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    # The caller's id of this one contact (a form submission): a repeat records nothing more.
    Column("contact_key", Text, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    Column("contacted_by", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("note", Text),
    Column("contacted_at", DateTime(timezone=True), nullable=False),
    Index("contacts_customer_at", "customer_id", "contacted_at"),
)

# What feedback knows about a customer, from scoring (tier) and profile (segments) events only.
customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("tier", Text),
    Column("tier_at", DateTime(timezone=True)),
    Column("segments", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("segments_at", DateTime(timezone=True)),
)
