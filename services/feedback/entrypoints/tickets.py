"""Tickets and complaints over HTTP: open, change, read (with SLA clocks), list."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Identifier, LongText, TicketPriority
from libs.common.problems import Problem
from services.feedback.adapters import tickets_repo
from services.feedback.adapters.tables import aliases, sla_breaches, tickets
from services.feedback.domain.sla import SlaClock, parse_tier
from services.feedback.domain.tickets import Status
from services.feedback.entrypoints.common import Deps, Reader, Session, Writer
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.tickets import change_ticket, open_ticket

router = APIRouter(prefix="/v1", tags=["tickets"])


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ticket_id: Identifier | None = Field(default=None, description="Generated when omitted.")
    customer_id: Identifier
    priority: TicketPriority = "normal"
    category: Identifier = "general"
    channel: Identifier = "web"
    text: LongText = ""


class TicketChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    priority: TicketPriority | None = None
    category: Identifier | None = None
    agent_response: bool = Field(default=False, description="An agent replied: stops the first-response clock.")
    agent_id: Identifier | None = None
    note: LongText | None = None


async def ticket_view(deps: FeedbackDeps, session: AsyncSession, row: RowMapping) -> dict[str, Any]:
    ticket = tickets_repo.to_domain(row)
    clock = SlaClock(ticket.sla_ticket(parse_tier(row["tier"])), deps.sla_table)
    breached = (
        await session.execute(select(sla_breaches).where(sla_breaches.c.ticket_id == ticket.ticket_id))
    ).mappings()
    breaches = {b["clock"]: b["breached_at"].isoformat() for b in breached}
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
        "timeline": row["timeline"],
        "sla": sla,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


@router.post("/tickets", status_code=201, summary="Open a ticket or complaint")
async def create_ticket(
    body: TicketIn, request: Request, response: Response, session: Session, deps: Deps, _: Writer
) -> dict[str, Any]:
    ticket_id = body.ticket_id or f"tk-{uuid.uuid4().hex[:16]}"
    data = {**body.model_dump(exclude={"customer_id"}), "ticket_id": ticket_id}
    runtime = request.app.state.runtime
    async with session.begin():
        row, created = await open_ticket(
            deps,
            session,
            runtime.outbox,
            cause_id=f"api:ticket:{ticket_id}",
            customer_id=body.customer_id,
            data=data,
            at=deps.clock(),
        )
        if not created:
            response.status_code = 200  # the same ticket posted again: idempotent, not a second complaint
        return await ticket_view(deps, session, row)


@router.patch("/tickets/{ticket_id}", summary="Change status, priority or category; record an agent response")
async def update_ticket(
    ticket_id: str, body: TicketChangeIn, request: Request, session: Session, deps: Deps, _: Writer
) -> dict[str, Any]:
    data: dict[str, Any] = {"ticket_id": ticket_id, **body.model_dump(exclude_none=True, exclude={"note"})}
    if body.note:
        data["text"] = body.note
    async with session.begin():
        row = await change_ticket(
            deps,
            session,
            request.app.state.runtime.outbox,
            event_type="ticket.updated",
            customer_id=None,
            data=data,
            at=deps.clock(),
        )
        return await ticket_view(deps, session, row)


@router.get("/tickets/{ticket_id}", summary="A ticket, its timeline and its SLA clocks")
async def get_ticket(ticket_id: str, session: Session, deps: Deps, _: Reader) -> dict[str, Any]:
    row = await tickets_repo.load(session, ticket_id)
    if row is None:
        raise Problem(404, "Not Found", f"no ticket '{ticket_id}'")
    return await ticket_view(deps, session, row)


@router.get("/tickets", summary="Tickets, newest first, by customer, status, queue or agent")
async def list_tickets(
    session: Session,
    deps: Deps,
    _: Reader,
    customer_id: str | None = None,
    status: Status | None = None,
    queue: str | None = None,
    agent_id: str | None = None,
    state: Annotated[Literal["open", "done", "any"], Query(description="open: not resolved/closed")] = "any",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    if customer_id is not None:
        customer_id = await aliases.resolve(session, customer_id)
    query = select(tickets).order_by(tickets.c.opened_at.desc()).limit(limit)
    for column, value in (("customer_id", customer_id), ("status", status), ("queue", queue), ("agent_id", agent_id)):
        if value is not None:
            query = query.where(tickets.c[column] == value)
    if state != "any":
        done = tickets.c.status.in_(("resolved", "closed"))
        query = query.where(done if state == "done" else ~done)
    rows = (await session.execute(query)).mappings().all()
    return {"items": [await ticket_view(deps, session, row) for row in rows]}
