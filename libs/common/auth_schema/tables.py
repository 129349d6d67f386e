"""Tables of schema `auth`."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Float, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from libs.common.auth_schema import SCHEMA

metadata = MetaData(schema=SCHEMA)

# The secret part of a key is stored only as its SHA-256: it is high-entropy and random, so a slow hash adds
# nothing, and one digest per request keeps authentication off the hot path's profile.
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("secret_sha256", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("rate_limit_per_s", Float),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("replaced_by", Text),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (revision auth_0001).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.clock_timestamp()),
    Column("service", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("address", Text),
    Column("action", Text, nullable=False),
    Column("customer_id", Text),
    Column("target", Text),
    Column("details", JSONB, nullable=False, server_default="{}"),
)
