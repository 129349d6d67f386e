"""Score history and due times: the append-only changes per customer and the scheduler's claims."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Row, Text, any_, bindparam, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import unnest
from services.scoring.adapters.tables import due_times, score_history
from services.scoring.domain.history import HistoryEntry


async def append(session: AsyncSession, entries: Sequence[HistoryEntry]) -> None:
    """Adds entries; one already recorded under its event id (a reprocessed cause) stays as it was."""
    if entries:
        rows = sorted(
            ({name: getattr(entry, name) for name in _HISTORY_COLUMNS} for entry in entries),
            key=lambda row: (row["customer_id"], row["event_id"]),
        )
        await session.execute(_APPEND, unnest.parameters(score_history, _HISTORY_COLUMNS, rows))


_HISTORY_COLUMNS = tuple(f.name for f in fields(HistoryEntry))
_APPEND = unnest.insert_statement(score_history, _HISTORY_COLUMNS, "ON CONFLICT DO NOTHING")
_DUE_COLUMNS = ("customer_id", "due_at")
_SET_DUE = unnest.insert_statement(
    due_times, _DUE_COLUMNS, unnest.upsert_all(due_times, ("customer_id",), _DUE_COLUMNS)
)
_DROP_DUE = delete(due_times).where(due_times.c.customer_id == any_(bindparam("ids", type_=ARRAY(Text))))


async def page(
    session: AsyncSession, customer_id: str, before: tuple[datetime, str] | None, limit: int
) -> list[Row[Any]]:
    """Newest first, keyset on (at, event_id); one row more than asked tells whether there is a next page."""
    query = select(score_history).where(score_history.c.customer_id == customer_id)
    if before is not None:
        query = query.where(tuple_(score_history.c.at, score_history.c.event_id) < tuple_(*before))
    query = query.order_by(score_history.c.at.desc(), score_history.c.event_id.desc()).limit(limit + 1)
    return list((await session.execute(query)).all())


async def purge_before(session: AsyncSession, cutoff: datetime) -> int:
    """Drops entries older than the retention; returns how many."""
    result = await session.execute(delete(score_history).where(score_history.c.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


async def set_due(session: AsyncSession, due: dict[str, datetime | None]) -> None:
    """Each customer's next due time replaces the one before; None removes it."""
    gone = sorted(customer_id for customer_id, at in due.items() if at is None)
    if gone:
        await session.execute(_DROP_DUE, {"ids": gone})
    rows = [{"customer_id": customer_id, "due_at": at} for customer_id, at in sorted(due.items()) if at is not None]
    if rows:
        await session.execute(_SET_DUE, unnest.parameters(due_times, _DUE_COLUMNS, rows))


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[tuple[str, datetime]]:
    """Due rows, earliest first, locked until the transaction ends; rows another replica holds are skipped, so
    two schedulers never rescore the same customer for the same due time."""
    rows = await session.execute(
        select(due_times.c.customer_id, due_times.c.due_at)
        .where(due_times.c.due_at <= now)
        .order_by(due_times.c.due_at, due_times.c.customer_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [(row.customer_id, row.due_at) for row in rows]


async def erase(session: AsyncSession, customer_ids: Iterable[str]) -> None:
    ids = sorted(set(customer_ids))
    if ids:
        await session.execute(delete(score_history).where(score_history.c.customer_id.in_(ids)))
        await session.execute(delete(due_times).where(due_times.c.customer_id.in_(ids)))
