"""libs.common.unnest.upsert on the real PostgreSQL: one statement over arrays, each column in its own type."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import Column, Date, DateTime, Float, Integer, MetaData, Numeric, Table, Text, select
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.db import create_engine, session_factory
from libs.common.unnest import upsert
from tests.conftest import Isolation

metadata = MetaData(schema="bulktest")
things = Table(
    "things",
    metadata,
    Column("id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("amount", Numeric),
    Column("ratio", Float),
    Column("day", Date),
    Column("at", DateTime(timezone=True)),
    Column("doc", JSONB),
)


def row(key: str, version: int, amount: str = "1.50") -> dict[str, object]:
    return {
        "id": key,
        "version": version,
        "amount": Decimal(amount),
        "ratio": 0.25,
        "day": date(2024, 2, 29),
        "at": datetime(2024, 2, 29, 12, tzinfo=UTC),
        "doc": {"a": [1, 2]},
    }


async def test_insert_skip_update_where_and_returning(isolated: Isolation) -> None:
    engine = create_engine(isolated.settings("bulktest"))
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS bulktest")
            await connection.run_sync(metadata.create_all)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            added = await upsert(session, things, [row("b", 1), row("a", 1)], key=["id"], returning=["id"])
            assert sorted(r.id for r in added) == ["a", "b"]
            # Without `update` a stored key is skipped; only the new one comes back.
            again = await upsert(session, things, [row("a", 5, "9"), row("c", 1)], key=["id"], returning=["id"])
            assert [r.id for r in again] == ["c"]
            # With `update`, the WHERE keeps rows whose stored version is newer.
            await upsert(
                session,
                things,
                [row("a", 3, "3"), row("b", 0, "7")],
                key=["id"],
                update=["version", "amount"],
                update_where="t.version < EXCLUDED.version",
            )
            assert await upsert(session, things, [], key=["id"]) == []
        async with sessions() as session:
            stored = {r.id: r for r in await session.execute(select(things))}
        assert {k: (r.version, r.amount) for k, r in stored.items()} == {
            "a": (3, Decimal("3")),
            "b": (1, Decimal("1.50")),
            "c": (1, Decimal("1.50")),
        }
        a = stored["a"]
        assert (a.ratio, a.day, a.at, a.doc) == (
            0.25,
            date(2024, 2, 29),
            datetime(2024, 2, 29, 12, tzinfo=UTC),
            {"a": [1, 2]},
        )
    finally:
        await engine.dispose()
