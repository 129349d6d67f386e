"""Async SQLAlchemy on asyncpg, and the inbox/outbox tables every service keeps in its own schema."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from libs.common.settings import Settings


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(settings: Settings) -> AsyncEngine:
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
        # JSON columns (outbox headers on every derived event) through orjson instead of the json module.
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class MessagingTables:
    """The inbox (processed ce_ids), outbox (events not yet published) and the published events kept for redelivery
    of one service schema."""

    def __init__(self, metadata: MetaData) -> None:
        self.inbox = Table(
            "inbox",
            metadata,
            Column("event_id", Text, primary_key=True),
            Column("consumer", Text, primary_key=True),
            Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
        self.outbox = Table(
            "outbox",
            metadata,
            Column("id", BigInteger, primary_key=True, autoincrement=True),
            Column("topic", Text, nullable=False),
            Column("key", LargeBinary, nullable=False),
            Column("value", LargeBinary, nullable=False),
            Column("headers", JSONB, nullable=False),
            Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
        # What the relay published, kept for the redelivery window: a broker that lost it gets it again.
        self.outbox_sent = Table(
            "outbox_sent",
            metadata,
            Column("id", BigInteger, primary_key=True, autoincrement=False),
            Column("topic", Text, nullable=False),
            Column("key", LargeBinary, nullable=False),
            Column("value", LargeBinary, nullable=False),
            Column("headers", JSONB, nullable=False),
            Column("sent_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        )
