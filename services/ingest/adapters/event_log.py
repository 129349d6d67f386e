"""SQL on `ingest.event_log` through asyncpg directly: the hot path cannot afford an ORM layer.

One statement per batch whatever its size (two when a large batch meets an id already logged); rows are sorted by id
so that concurrent batches with overlapping ids lock in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from libs.common.envelope import format_time
from services.ingest.adapters.records import EventRecord
from services.ingest.adapters.tables import SCHEMA

# For INSERT ... ON CONFLICT the rows travel as one JSON array of objects ($1): asyncpg encodes text[] and
# timestamptz[] parameters at 1-2.5 µs per element (8.4 ms of ingest CPU per 1,000 events for six arrays), orjson
# builds the text in 3.5 ms, and json_to_recordset takes each row apart in one pass (extracting fields with ->> parses
# the row once per field, which cost PostgreSQL twice as much).
# A conflicting id older than the dedupe window is a new event: the row is replaced and returned.
# Within the window the row is left alone and not returned, which is what "duplicate" means.
_INSERT_FRESH = """
INSERT INTO ingest.event_log AS l (event_id, type, customer_id, source, event_time, data, published)
SELECT u.event_id, u.type, u.customer_id, u.source, u.event_time, u.data, $2
FROM json_to_recordset($1::text::json)
     AS u(event_id text, type text, customer_id text, source text, event_time timestamptz, data json)
ON CONFLICT (event_id) DO UPDATE
   SET type = EXCLUDED.type, customer_id = EXCLUDED.customer_id, source = EXCLUDED.source,
       event_time = EXCLUDED.event_time, data = EXCLUDED.data, published = EXCLUDED.published,
       received_at = now()
 WHERE l.received_at < now() - make_interval(secs => $3)
RETURNING event_id
"""
# From this many rows a batch is first copied in (binary COPY, in a savepoint), which spares PostgreSQL both parsing
# the JSON rows and the speculative insertion of ON CONFLICT: 4.3 µs of its CPU per event, against 8.5 for
# _INSERT_FRESH and 6.8 for a plain INSERT from the same JSON; ingest's side is cheaper too. Any id already in the
# log makes the copy fail, and the batch then goes through _INSERT_FRESH. Smaller groups go there at once: the
# savepoint around the attempt costs two round trips, which only a large batch repays.
OPTIMISTIC_MIN_ROWS = 64
_COPIED_COLUMNS = ("event_id", "type", "customer_id", "source", "event_time", "data", "published")
_COLUMNS = "event_id, type, customer_id, source, event_time, data::text AS data"


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_pool(sqlalchemy_url: str, max_size: int) -> asyncpg.Pool:
    # Asynchronous commit by default: when the broker acknowledged an event (acks=all) the broker holds
    # its durability and the row is the dedupe record, so the request need not wait for a WAL flush.
    # Transactions that make the event log the only copy (the outbox path) call commit_durably().
    return await asyncpg.create_pool(
        asyncpg_dsn(sqlalchemy_url),
        min_size=2,
        max_size=max_size,
        server_settings={"synchronous_commit": "off"},
        # The default reset on release is one more round trip per request; ingest keeps no session
        # state (no LISTEN, no session-level advisory locks or SET: the erasure gate is per transaction), so there is
        # nothing to reset.
        reset=_keep_session,
    )


async def _keep_session(conn: asyncpg.Connection) -> None:
    return None


async def commit_durably(conn: asyncpg.Connection) -> None:
    """Makes the current transaction's COMMIT wait for the WAL flush."""
    await conn.execute("SET LOCAL synchronous_commit TO on")


async def insert_fresh(
    conn: asyncpg.Connection, records: Sequence[EventRecord], *, published: bool, dedupe_window_s: float
) -> set[str]:
    """Inserts records (ids unique within the call) in the caller's transaction; returns the ids that were new."""
    ordered = sorted(records, key=attrgetter("event_id"))
    if len(ordered) >= OPTIMISTIC_MIN_ROWS and conn.is_in_transaction():
        try:
            async with conn.transaction():  # a savepoint: the failed attempt leaves nothing behind
                await conn.copy_records_to_table(
                    "event_log",
                    schema_name=SCHEMA,
                    columns=_COPIED_COLUMNS,
                    records=[
                        (r.event_id, r.type, r.customer_id, r.source, r.time, r.value.decode(), published)
                        for r in ordered
                    ],
                )
            return {r.event_id for r in records}
        except asyncpg.UniqueViolationError:
            pass
    rows = [
        {
            "event_id": r.event_id,
            "type": r.type,
            "customer_id": r.customer_id,
            "source": r.source,
            "event_time": r.time,
            "data": orjson.Fragment(r.value),
        }
        for r in ordered
    ]
    returned = await conn.fetch(_INSERT_FRESH, orjson.dumps(rows).decode(), published, dedupe_window_s)
    return {row[0] for row in returned}


async def set_published(conn: asyncpg.Connection, event_ids: Sequence[str], published: bool) -> None:
    if event_ids:
        await conn.execute(
            "UPDATE ingest.event_log SET published = $2 WHERE event_id = ANY($1::text[])",
            sorted(event_ids),
            published,
        )


def _record(row: Any) -> EventRecord:
    return EventRecord(row[0], row[1], row[2], row[3], row[4], format_time(row[4]), row[5].encode())


async def claim_unpublished(conn: asyncpg.Connection, limit: int) -> list[EventRecord]:
    """Locks the oldest unpublished rows; SKIP LOCKED lets several replicas relay side by side."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ingest.event_log WHERE NOT published "
        "ORDER BY received_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return [_record(row) for row in rows]


async def unpublished_count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM ingest.event_log WHERE NOT published") or 0)


async def purge_older_than(conn: asyncpg.Connection, days: float) -> int:
    """Drops published rows received more than `days` ago (never unpublished ones: they are the outbox)."""
    status = await conn.execute(
        "DELETE FROM ingest.event_log WHERE published AND received_at < now() - make_interval(secs => $1)",
        days * 86400,
    )
    return int(status.split()[-1])


async def mark_unpublished_since(conn: asyncpg.Connection, window_s: float) -> int:
    """Every published event received within the window goes back to the relay; returns how many.

    As replay does, never an erased customer's event from before the erasure.
    """
    status = await conn.execute(
        "UPDATE ingest.event_log SET published = false "
        "WHERE published AND received_at >= now() - make_interval(secs => $1) "
        "AND NOT EXISTS (SELECT 1 FROM ingest.customer_erasures e "
        "WHERE e.customer_id = event_log.customer_id AND event_log.event_time <= e.erased_at)",
        window_s,
    )
    return int(status.split()[-1])


async def events_between(
    conn: asyncpg.Connection, start: datetime, end: datetime, types: Sequence[str] | None, chunk: int
) -> AsyncIterator[list[EventRecord]]:
    """Event-time range [start, end) in event-time order, in chunks, through a server-side cursor.

    Never an erased customer's event from before the erasure, even while its scrub is still queued.
    """
    query = (
        f"SELECT {_COLUMNS} FROM ingest.event_log WHERE event_time >= $1 AND event_time < $2 "
        "AND NOT EXISTS (SELECT 1 FROM ingest.customer_erasures e "
        "WHERE e.customer_id = event_log.customer_id AND event_log.event_time <= e.erased_at)"
    )
    args: list[Any] = [start, end]
    if types:
        query += " AND type = ANY($3::text[])"
        args.append(list(types))
    query += " ORDER BY event_time, event_id"
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args)
        while True:
            rows = await cursor.fetch(chunk)
            if not rows:
                return
            yield [_record(row) for row in rows]


async def events_of(conn: asyncpg.Connection, customer_id: str, limit: int) -> list[EventRecord]:
    """A customer's events in the log, oldest first (the data subject's export)."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ingest.event_log WHERE customer_id = $1 ORDER BY event_time, event_id LIMIT $2",
        customer_id,
        limit,
    )
    return [_record(row) for row in rows]
