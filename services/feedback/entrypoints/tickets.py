"""Tickets and complaints over HTTP: open, change, read (with SLA clocks), list."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from libs.common.events import Identifier, LongText, TicketPriority
from libs.common.problems import Problem
from services.feedback.domain.tickets import Status
from services.feedback.entrypoints.common import Deps, Reader, Session, Writer
from services.feedback.handlers.ticket_views import get_ticket as get_ticket_view
from services.feedback.handlers.ticket_views import list_tickets as find_tickets
from services.feedback.handlers.ticket_views import ticket_view
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
    view = await get_ticket_view(deps, session, ticket_id)
    if view is None:
        raise Problem(404, "Not Found", f"no ticket '{ticket_id}'")
    return view


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
    items = await find_tickets(
        deps,
        session,
        customer_id=customer_id,
        status=status,
        queue=queue,
        agent_id=agent_id,
        state=state,
        limit=limit,
    )
    return {"items": items}
