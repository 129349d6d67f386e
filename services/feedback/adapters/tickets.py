"""Tickets as rows <-> the domain `Ticket`; status history and timeline are JSON lists on the row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import RowMapping, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.envelope import format_time, parse_time
from services.feedback.adapters.tables import sla_breaches, tickets
from services.feedback.domain.sla import StatusChange, parse_priority
from services.feedback.domain.tickets import Ticket, TimelineEntry, parse_status


def _time(value: str) -> datetime:
    return parse_time(value)


def _history_json(history: Sequence[StatusChange]) -> list[dict[str, str]]:
    return [{"at": format_time(c.at), "status": c.status} for c in history]


def _timeline_json(timeline: Sequence[TimelineEntry]) -> list[dict[str, Any]]:
    return [{"at": format_time(e.at), "kind": e.kind, "actor": e.actor, "detail": dict(e.detail)} for e in timeline]


def _timeline_entry(raw: Mapping[str, Any]) -> TimelineEntry:
    return TimelineEntry(
        at=_time(raw["at"]),
        kind=raw.get("kind", "note"),
        actor=raw.get("actor"),
        detail=MappingProxyType({str(k): str(v) for k, v in (raw.get("detail") or {}).items()}),
    )


def to_domain(row: RowMapping) -> Ticket:
    return Ticket(
        ticket_id=row["ticket_id"],
        customer_id=row["customer_id"],
        status=parse_status(row["status"]),
        priority=parse_priority(row["priority"]),
        category=row["category"],
        channel=row["channel"],
        opened_at=row["opened_at"],
        updated_at=row["updated_at"],
        text=row["text"],
        first_response_at=row["first_response_at"],
        resolved_at=row["resolved_at"],
        closed_at=row["closed_at"],
        status_history=tuple(StatusChange(_time(c["at"]), c["status"]) for c in row["status_history"]),
        timeline=tuple(_timeline_entry(e) for e in row["timeline"]),
    )


def _values(ticket: Ticket) -> dict[str, Any]:
    return {
        "customer_id": ticket.customer_id,
        "status": ticket.status,
        "priority": ticket.priority,
        "category": ticket.category,
        "channel": ticket.channel,
        "text": ticket.text,
        "opened_at": ticket.opened_at,
        "updated_at": ticket.updated_at,
        "first_response_at": ticket.first_response_at,
        "resolved_at": ticket.resolved_at,
        "closed_at": ticket.closed_at,
        "status_history": _history_json(ticket.status_history),
        "timeline": _timeline_json(ticket.timeline),
    }


async def load_for_update(session: AsyncSession, ticket_id: str) -> RowMapping | None:
    """Row-locks the ticket so an event handler, an API call and the SLA checker never interleave on it."""
    result = await session.execute(select(tickets).where(tickets.c.ticket_id == ticket_id).with_for_update())
    return result.mappings().first()


async def load(session: AsyncSession, ticket_id: str) -> RowMapping | None:
    return (await session.execute(select(tickets).where(tickets.c.ticket_id == ticket_id))).mappings().first()


async def insert(session: AsyncSession, ticket: Ticket, *, tier: str, queue: str, agent_id: str | None) -> bool:
    """False when the id exists already (a concurrent open of the same ticket won)."""
    result = await session.execute(
        pg_insert(tickets)
        .values(ticket_id=ticket.ticket_id, tier=tier, queue=queue, agent_id=agent_id, **_values(ticket))
        .on_conflict_do_nothing(index_elements=[tickets.c.ticket_id])
        .returning(tickets.c.ticket_id)
    )
    return result.first() is not None


async def update(session: AsyncSession, ticket: Ticket, **extra: Any) -> None:
    await session.execute(
        tickets.update().where(tickets.c.ticket_id == ticket.ticket_id).values(**_values(ticket), **extra)
    )


async def set_sla_due(session: AsyncSession, ticket_id: str, due_at: datetime | None) -> None:
    await session.execute(tickets.update().where(tickets.c.ticket_id == ticket_id).values(sla_due_at=due_at))


async def breaches_of(session: AsyncSession, ticket_id: str) -> dict[str, datetime]:
    """When each SLA clock of the ticket was breached."""
    rows = (await session.execute(select(sla_breaches).where(sla_breaches.c.ticket_id == ticket_id))).mappings()
    return {row["clock"]: row["breached_at"] for row in rows}


async def find(
    session: AsyncSession, *, equal: Mapping[str, str | None], done: bool | None, limit: int
) -> list[RowMapping]:
    """Newest first: tickets whose columns equal every non-None value of `equal`, resolved/closed or not (`done`)."""
    query = select(tickets).order_by(tickets.c.opened_at.desc()).limit(limit)
    for column, value in equal.items():
        if value is not None:
            query = query.where(tickets.c[column] == value)
    if done is not None:
        finished = tickets.c.status.in_(("resolved", "closed"))
        query = query.where(finished if done else ~finished)
    return list((await session.execute(query)).mappings().all())


async def raised_clocks(session: AsyncSession, ticket_id: str) -> set[str]:
    """The SLA clocks of the ticket already recorded as breached."""
    rows = await session.execute(select(sla_breaches.c.clock).where(sla_breaches.c.ticket_id == ticket_id))
    return set(rows.scalars())


async def insert_breach(session: AsyncSession, **values: Any) -> bool:
    """Records a breach; False when the (ticket, clock) was recorded already (the primary key decides)."""
    inserted = await session.execute(
        pg_insert(sla_breaches).values(**values).on_conflict_do_nothing().returning(sla_breaches.c.ticket_id)
    )
    return inserted.first() is not None


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> Sequence[RowMapping]:
    """Tickets whose SLA deadline has come, locked with SKIP LOCKED so replicas split the work."""
    result = await session.execute(
        select(tickets)
        .where(tickets.c.sla_due_at <= now)
        .order_by(tickets.c.sla_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return result.mappings().all()


async def newest_update(session: AsyncSession) -> datetime | None:
    """The newest ticket change seen: the replay clock of the SLA checker."""
    newest: datetime | None = await session.scalar(select(func.max(tickets.c.updated_at)))
    return newest
