"""Profile's schema: one JSON document per customer plus what must be searchable without reading it.

The document (`state`) is the truth; `email`/`phone`/`erp_id`/`shop_id`/`tags` are copies kept in step by every
writer so identity resolution and search are index look-ups. `rev` is a random token written with every change:
an in-process cache compares it to know whether its copy of the document is still the stored one.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB

from libs.common.db import MessagingTables

SCHEMA = "profile"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)

IDENTITY_COLUMNS: tuple[str, ...] = ("email", "phone", "erp_id", "shop_id")

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("state", JSON, nullable=False),  # json, not jsonb: see migration profile_0003
    Column("rev", BigInteger, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("erp_id", Text),
    Column("shop_id", Text),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("customers_email", "email"),
    Index("customers_phone", "phone"),
    Index("customers_erp_id", "erp_id"),
    Index("customers_shop_id", "shop_id"),
    Index("customers_tags", "tags", postgresql_using="gin"),
)

# A profile folded into another by identity resolution: reads and later events of `merged_id` go to the survivor.
aliases = Table(
    "aliases",
    metadata,
    Column("merged_id", Text, primary_key=True),
    Column("survivor_id", Text, nullable=False, index=True),
    Column("merged_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Ids erased on request. Events with an event time up to `erased_at` describe the erased person and are dropped,
# so a late delivery or a `retain replay` cannot bring their data back; newer events start a fresh profile.
erasures = Table(
    "erasures",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

timeline = Table(
    "timeline",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("event_time", DateTime(timezone=True), primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("summary", JSONB, nullable=False),
)

segments = Table(
    "segments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("condition", JSONB, nullable=False),
    # Bumped on every change; part of the deterministic ids of the enter/leave events a change causes.
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", Text, ForeignKey(segments.c.id, ondelete="CASCADE"), primary_key=True),
    Column("customer_id", Text, primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("segment_members_customer", "customer_id"),
)
