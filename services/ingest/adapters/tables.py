"""Ingest's schema: the event log is both the dedupe record and the outbox of accepted events."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, Integer, LargeBinary, MetaData, Table, Text, func, text

from libs.common.db import MessagingTables
from libs.common.erasures import ErasureRecords

SCHEMA = "ingest"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)

event_log = Table(
    "event_log",
    metadata,
    Column("event_id", Text(collation="C"), primary_key=True),
    Column("type", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("event_time", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("data", JSON, nullable=False),
    Column("published", Boolean, nullable=False, server_default=text("false")),
    Index("event_log_unpublished", "received_at", postgresql_where=text("NOT published")),
    Index("event_log_event_time", "event_time"),
)

# Ids erased on request (libs.common.erasures): the event log keeps nothing of theirs from before the erasure.
erasures = ErasureRecords(metadata)
# Erasures whose events are still to be deleted from the event log (by handlers.erasure.scrub_pending).
erasure_scrubs = Table(
    "erasure_scrubs",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

# The key store (libs.common.personal): each customer's data key wrapped by the master key. Deleting a row is the
# crypto-shredding of that customer (handlers.erasure).
customer_keys = Table(
    "customer_keys",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("key_id", Text, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("scheme_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
