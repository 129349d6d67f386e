"""Profile's schema: one JSONB document per customer plus its indexed identities."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.db import MessagingTables

SCHEMA = "profile"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("state", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
