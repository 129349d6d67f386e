"""Feedback's schema: tickets."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.db import MessagingTables

SCHEMA = "feedback"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)

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
)
