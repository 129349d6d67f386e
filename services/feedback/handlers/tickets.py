"""Ticket use cases shared by the `ticket.*` consumer and the HTTP API.

Opening a ticket routes it (queue, least-loaded agent), emits `feedback.received` as a complaint and
starts its SLA clocks; every change re-evaluates the clocks in the same transaction, so a breach that
happened before a late resolve is still raised once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.consumer import EventHandler, HandlerContext, PoisonEvent
from libs.common.contracts import FeedbackReceived, derived
from libs.common.envelope import CloudEvent
from libs.common.outbox import Outbox
from services.feedback.adapters import customers, tickets
from services.feedback.adapters.tables import aliases, erasure_guard
from services.feedback.domain.errors import FeedbackDomainError, InvalidValue
from services.feedback.domain.sentiment import analyze
from services.feedback.domain.sla import TIERS
from services.feedback.domain.tickets import TimelineEntry, apply_event
from services.feedback.handlers import routing, sla
from services.feedback.handlers.deps import SOURCE, FeedbackDeps
from services.feedback.handlers.sealing import Vault

TICKET_EVENTS = frozenset({"ticket.opened", "ticket.updated", "ticket.closed"})


class UnknownTicket(InvalidValue):
    def __init__(self, ticket_id: str) -> None:
        super().__init__("ticket_id", f"unknown ticket {ticket_id!r}")


def _ticket_id(data: Mapping[str, Any]) -> str:
    ticket_id = data.get("ticket_id")
    if not isinstance(ticket_id, str) or not ticket_id:
        raise InvalidValue("data.ticket_id", "must be a non-empty string")
    return ticket_id


def _same_customer(row: RowMapping, customer_id: str) -> None:
    if row["customer_id"] != customer_id:
        # Ticket ids are the helpdesk's; one reused for another customer is an upstream bug, not a merge.
        raise InvalidValue("ticket_id", f"ticket {row['ticket_id']!r} belongs to another customer")


async def _tier(deps: FeedbackDeps, session: AsyncSession, customer_id: str) -> str:
    tier = (await customers.facts(session, customer_id)).tier
    return tier if tier in TIERS else deps.settings.default_tier


async def open_ticket(
    deps: FeedbackDeps,
    session: AsyncSession,
    outbox: Outbox,
    *,
    cause_id: str,
    customer_id: str,
    data: Mapping[str, Any],
    at: datetime,
) -> tuple[RowMapping, bool]:
    """Returns the ticket row and whether it was created now (False: it existed already)."""
    customer_id = await aliases.lock_and_resolve(session, customer_id)
    ticket_id = _ticket_id(data)
    existing = await tickets.load_for_update(session, ticket_id)
    if existing is not None:
        _same_customer(existing, customer_id)
        return existing, False
    ticket = apply_event(None, "ticket.opened", customer_id, data, at)
    tier = await _tier(deps, session, customer_id)
    decision = await routing.assign(session, tier, ticket.category)
    ticket = replace(
        ticket,
        timeline=(
            *ticket.timeline,
            TimelineEntry(
                at, "note", None, MappingProxyType({"queue": decision.queue, "agent_id": decision.agent_id or ""})
            ),
        ),
    )
    sentiment = analyze(ticket.text).label  # of the clear text, before it is sealed
    ticket = await Vault(deps.personal).seal_ticket(ticket)
    if not await tickets.insert(session, ticket, tier=tier, queue=decision.queue, agent_id=decision.agent_id):
        row = await tickets.load_for_update(session, ticket_id)
        assert row is not None
        _same_customer(row, customer_id)
        return row, False
    topic, complaint = derived(
        FeedbackReceived(score_type="complaint", category=ticket.category, sentiment=sentiment),
        cause=cause_id,
        source=SOURCE,
        subject=customer_id,
        time=at,
    )
    await outbox.add(session, topic, complaint)
    await sla.evaluate(deps, session, outbox, ticket, tier, deps.now(at))
    row = await tickets.load(session, ticket_id)
    assert row is not None
    return row, True


def _upstream_status(data: Mapping[str, Any], current: str) -> Mapping[str, Any]:
    # Helpdesks say "open" again for a reopened ticket; our state machine calls that "reopened".
    if data.get("status") == "open" and current in ("resolved", "closed"):
        return {**data, "status": "reopened"}
    return data


async def change_ticket(
    deps: FeedbackDeps,
    session: AsyncSession,
    outbox: Outbox,
    *,
    event_type: str,
    customer_id: str | None,
    data: Mapping[str, Any],
    at: datetime,
) -> RowMapping:
    """A `ticket.updated` / `ticket.closed`; `customer_id` None (the API) trusts the stored owner."""
    if customer_id is not None:
        customer_id = await aliases.lock_and_resolve(session, customer_id)
    ticket_id = _ticket_id(data)
    row = await tickets.load_for_update(session, ticket_id)
    if row is None:
        raise UnknownTicket(ticket_id)
    if customer_id is not None:
        _same_customer(row, customer_id)
    ticket = tickets.to_domain(row)
    updated = apply_event(ticket, event_type, ticket.customer_id, _upstream_status(data, ticket.status), at)
    updated = await Vault(deps.personal).seal_ticket(updated)
    await tickets.update(session, updated)
    await sla.evaluate(deps, session, outbox, updated, row["tier"], deps.now(at))
    fresh = await tickets.load(session, ticket_id)
    assert fresh is not None
    return fresh


def ticket_handler(deps: FeedbackDeps) -> EventHandler:
    async def on_ticket_event(ctx: HandlerContext, event: CloudEvent) -> None:
        if not await erasure_guard.admits(ctx.session, event):
            return  # before an unknown ticket could dead-letter it with the erased person's text
        try:
            if event.type == "ticket.opened":
                await open_ticket(
                    deps,
                    ctx.session,
                    ctx.outbox,
                    cause_id=event.id,
                    customer_id=event.subject,
                    data=event.data,
                    at=event.time,
                )
            else:
                await change_ticket(
                    deps,
                    ctx.session,
                    ctx.outbox,
                    event_type=event.type,
                    customer_id=event.subject,
                    data=event.data,
                    at=event.time,
                )
        except FeedbackDomainError as exc:
            # Retrying cannot fix an illegal transition or an unknown ticket: dead-letter with the reason.
            raise PoisonEvent(exc.message) from exc

    return on_ticket_event
