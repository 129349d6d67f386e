"""SQL of erasure in ingest: the gate between accepting and erasing, the records, and the event log's scrub.

Accepting a batch and recording an erasure are ordered by one advisory lock (the gate): every accepting
transaction reads the erasure records right after taking it shared (`ingest.erasures_of`, one round trip), and
recording an erasure takes it exclusively. So an accept that found no record for a customer committed before the
erasure was recorded, and its rows are there for the scrub that follows; an accept after it reads the record and
keeps nothing of the customer's past. The scrub itself runs later, in its own transaction without the gate: it
scans the event log, and accepting must not wait for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.adapters.tables import erasure_scrubs, erasures

# Also written into ingest.erasures_of (migration 0005), which takes it shared.
_GATE = {"lock_class": 0x45524153, "lock_id": 1}  # "ERAS"


async def erased_at(conn: asyncpg.Connection, customer_ids: Iterable[str]) -> dict[str, datetime]:
    """The erasure instants of those customers that were erased; holds the gate shared until the transaction ends."""
    rows = await conn.fetch("SELECT customer_id, erased_at FROM ingest.erasures_of($1::text[])", list(customer_ids))
    return {row[0]: row[1] for row in rows}


async def record(session: AsyncSession, erased: dict[str, datetime]) -> None:
    """Records erasures and queues their scrub, behind the gate held exclusively until the transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock_class, :lock_id)"), _GATE)
    for customer_id, at in sorted(erased.items()):
        await erasures.record(session, [customer_id], at)
    rows = [{"customer_id": customer_id, "erased_at": at} for customer_id, at in sorted(erased.items())]
    stmt = pg_insert(erasure_scrubs).values(rows)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[erasure_scrubs.c.customer_id], set_={"erased_at": stmt.excluded.erased_at}
        )
    )


async def scrub_pending(session: AsyncSession, limit: int) -> int:
    """Deletes the event-log rows of queued erasures (events up to each erasure instant); returns erasures done."""
    queued = (
        await session.execute(
            select(erasure_scrubs.c.customer_id, erasure_scrubs.c.erased_at)
            .order_by(erasure_scrubs.c.customer_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not queued:
        return 0
    await session.execute(
        text(
            "DELETE FROM ingest.event_log l "
            "USING unnest(CAST(:ids AS text[]), CAST(:times AS timestamptz[])) AS e(customer_id, erased_at) "
            "WHERE l.customer_id = e.customer_id AND l.event_time <= e.erased_at"
        ),
        {"ids": [row.customer_id for row in queued], "times": [row.erased_at for row in queued]},
    )
    await session.execute(
        delete(erasure_scrubs).where(erasure_scrubs.c.customer_id.in_([r.customer_id for r in queued]))
    )
    return len(queued)
