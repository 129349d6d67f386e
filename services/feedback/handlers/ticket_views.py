"""Use cases of the tickets API that read: a ticket with its SLA clocks, and lists of tickets."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters import tickets
from services.feedback.adapters.tables import aliases
from services.feedback.domain.sla import SlaClock, parse_tier
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.sealing import Vault


async def ticket_view(deps: FeedbackDeps, session: AsyncSession, row: RowMapping) -> dict[str, Any]:
    """The ticket as the API shows it, its text and notes opened."""
    view = await _sealed_view(deps, session, row)
    await Vault(deps.personal).open_ticket_views([view])
    return view


async def _sealed_view(deps: FeedbackDeps, session: AsyncSession, row: RowMapping) -> dict[str, Any]:
    ticket = tickets.to_domain(row)
    clock = SlaClock(ticket.sla_ticket(parse_tier(row["tier"])), deps.sla_table)
    breached = await tickets.breaches_of(session, ticket.ticket_id)
    breaches = {name: at.isoformat() for name, at in breached.items()}
    sla = {
        name: {
            "target_s": int(r.target.total_seconds()),
            "elapsed_s": int(r.elapsed.total_seconds()),
            "remaining_s": int(r.remaining.total_seconds()),
            "state": r.state,
            "due_at": r.due_at.isoformat() if r.due_at else None,
            "breached_at": breaches.get(name),
        }
        for name, r in clock.readings(deps.now()).items()
    }
    return {
        "ticket_id": row["ticket_id"],
        "customer_id": row["customer_id"],
        "status": row["status"],
        "priority": row["priority"],
        "category": row["category"],
        "channel": row["channel"],
        "text": row["text"],
        "tier": row["tier"],
        "queue": row["queue"],
        "agent_id": row["agent_id"],
        "opened_at": row["opened_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "first_response_at": _iso(row["first_response_at"]),
        "resolved_at": _iso(row["resolved_at"]),
        "closed_at": _iso(row["closed_at"]),
        "status_history": row["status_history"],
        "timeline": [{**entry, "detail": dict(entry.get("detail") or {})} for entry in row["timeline"]],
        "sla": sla,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def get_ticket(deps: FeedbackDeps, session: AsyncSession, ticket_id: str) -> dict[str, Any] | None:
    row = await tickets.load(session, ticket_id)
    return None if row is None else await ticket_view(deps, session, row)


async def list_tickets(
    deps: FeedbackDeps,
    session: AsyncSession,
    *,
    customer_id: str | None,
    status: str | None,
    queue: str | None,
    agent_id: str | None,
    state: Literal["open", "done", "any"],
    limit: int,
) -> list[dict[str, Any]]:
    if customer_id is not None:
        customer_id = await aliases.resolve(session, customer_id)
    equal = {"customer_id": customer_id, "status": status, "queue": queue, "agent_id": agent_id}
    rows = await tickets.find(session, equal=equal, done=None if state == "any" else state == "done", limit=limit)
    views = [await _sealed_view(deps, session, row) for row in rows]
    await Vault(deps.personal).open_ticket_views(views)  # one key request for the page
    return views
