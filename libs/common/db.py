"""Async SQLAlchemy on asyncpg, and the inbox/outbox tables every service keeps in its own schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    Row,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects import postgresql
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


_POSTGRES = postgresql.dialect()  # type: ignore[no-untyped-call]


def _array_type(column: Column[Any]) -> str:
    return f"{column.type.compile(dialect=_POSTGRES)}[]"


async def bulk_upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str] = (),
    update: Sequence[str] | None = None,
    update_where: str | None = None,
    returning: Sequence[str] = (),
) -> Sequence[Row[Any]]:
    """Inserts `rows` (mappings with the same columns) in one statement over arrays, whatever their number.

    Without `update`, a row whose key is already stored is skipped (ON CONFLICT DO NOTHING); with it, those columns
    are overwritten from the new row (`update_where`, SQL over `excluded` and the table's name, keeps some stored
    rows). Rows are written in key order, so concurrent writers of overlapping keys do not deadlock; with `update`
    the caller passes each key once (PostgreSQL refuses to update one row twice in a statement).
    """
    if not rows:
        return []
    names = [c.name for c in table.columns if c.name in rows[0]]
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in key)) if key else list(rows)
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table.c[name])})" for name in names)
    statement = (
        f"INSERT INTO {table.fullname} ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT {'(' + ', '.join(key) + ') ' if key else ''}"
    )
    if update:
        statement += "DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in update)
        if update_where:
            statement += f" WHERE {update_where}"
    else:
        statement += "DO NOTHING"
    if returning:
        statement += " RETURNING " + ", ".join(returning)
    result = await session.execute(text(statement), {name: [row[name] for row in ordered] for name in names})
    return result.all() if returning else []
