"""Campaign's schema: every external effect, unique by its idempotency key."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.db import MessagingTables

SCHEMA = "campaign"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)

actions = Table(
    "actions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("customer_id", Text, nullable=False),
    Column("campaign_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("actions_customer", "customer_id"),
)
