"""Scoring's schema: the latest score per customer."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.db import MessagingTables

SCHEMA = "scoring"
metadata = MetaData(schema=SCHEMA)
messaging = MessagingTables(metadata)

scores = Table(
    "scores",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("tier", Text, nullable=False),
    Column("facts", JSONB, nullable=False),
    Column("score", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
