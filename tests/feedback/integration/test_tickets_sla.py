"""Tickets through events, routing, SLA breaches raised exactly once, erasure: handlers on a real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from libs.common.consumer import PoisonEvent
from services.feedback.adapters.tables import (
    customers,
    sla_breaches,
    survey_responses,
    survey_tokens,
    surveys,
    tickets,
)
from services.feedback.handlers import customers as customer_handlers
from services.feedback.handlers import sla
from services.feedback.handlers.surveys import issue_link, survey_response_handler
from services.feedback.handlers.tickets import ticket_handler
from tests.feedback.integration.harness import T0, Harness, event


async def make_vip(h: Harness, customer: str) -> None:
    await h.handle(customer_handlers.on_score_change, event("score.changed", customer, {"tier": "high"}))


async def check(h: Harness) -> int:
    return await sla.check_due(h.deps, h.sessions, h.deps.outbox)


async def test_ticket_lifecycle_through_events_with_routing_and_timeline(harness: Harness) -> None:
    h = harness
    on_ticket = ticket_handler(h.deps)
    await h.add_agent("a-busy", ["delivery", "vip"])
    await h.add_agent("a-free", ["delivery", "vip"])
    await h.add_agent("a-novip", ["delivery"])
    await make_vip(h, "c-1")
    # a-busy already carries one open ticket, so the next VIP delivery ticket goes to a-free.
    await h.handle(on_ticket, event("ticket.opened", "c-9", {"ticket_id": "t-0", "category": "delivery"}))
    await h.handle(
        on_ticket,
        event(
            "ticket.opened",
            "c-1",
            {"ticket_id": "t-1", "priority": "urgent", "category": "delivery", "text": "parcel broken, angry"},
        ),
    )
    opened = await h.rows(select(tickets).order_by(tickets.c.ticket_id))
    assert [(r["ticket_id"], r["agent_id"], r["queue"], r["tier"]) for r in opened] == [
        ("t-0", "a-busy", "delivery", "low"),
        ("t-1", "a-free", "vip", "high"),
    ]
    complaints = await h.emitted("feedback.received")
    assert complaints[-1][1] == {"score_type": "complaint", "category": "delivery", "sentiment": "negative"}

    steps: list[tuple[str, dict[str, Any], int]] = [
        ("ticket.updated", {"status": "in_progress", "agent_id": "a-free", "agent_response": True}, 2),
        ("ticket.updated", {"status": "waiting_on_customer"}, 30),
        ("ticket.updated", {"status": "in_progress", "priority": "high"}, 60),
        ("ticket.closed", {"resolution": "replaced"}, 90),
    ]
    for type_, data, minute in steps:
        h.clock.now = T0 + timedelta(minutes=minute)
        await h.handle(on_ticket, event(type_, "c-1", {"ticket_id": "t-1", **data}, at=h.clock.now))
    # A redelivered open (new event id, same ticket) changes nothing.
    await h.handle(on_ticket, event("ticket.opened", "c-1", {"ticket_id": "t-1", "priority": "low"}))

    (row,) = await h.rows(select(tickets).where(tickets.c.ticket_id == "t-1"))
    assert row["status"] == "closed"
    assert row["priority"] == "high"
    assert [c["status"] for c in row["status_history"]] == [
        "open",
        "in_progress",
        "waiting_on_customer",
        "in_progress",
        "closed",
    ]
    assert row["first_response_at"] == T0 + timedelta(minutes=2)
    kinds = [e["kind"] for e in row["timeline"]]
    assert kinds[:3] == ["opened", "note", "agent_response"] and "priority_changed" in kinds
    assert row["sla_due_at"] is None  # closed: nothing left to breach
    assert len(await h.emitted("feedback.received")) == 2  # one complaint per ticket, not per redelivery
    assert await h.emitted("sla.breached") == []

    # An update for a ticket we never saw cannot succeed on retry: it is dead-lettered.
    with pytest.raises(PoisonEvent, match="unknown ticket"):
        await h.handle(on_ticket, event("ticket.updated", "c-1", {"ticket_id": "t-404", "status": "resolved"}))


async def test_sla_breach_raised_once_even_with_two_checkers_and_pauses_respected(harness: Harness) -> None:
    h = harness
    on_ticket = ticket_handler(h.deps)
    await make_vip(h, "c-vip")
    await h.handle(on_ticket, event("ticket.opened", "c-vip", {"ticket_id": "t-u", "priority": "urgent"}))
    await h.handle(on_ticket, event("ticket.opened", "c-low", {"ticket_id": "t-l", "priority": "urgent"}))

    h.clock.now = T0 + timedelta(minutes=4)
    assert await check(h) == 0  # nothing due yet: the deadline column keeps the checker off both tickets
    h.clock.now = T0 + timedelta(minutes=6)
    # Two replicas at once, then again: the VIP urgent first response (5 min) breaches exactly once.
    await asyncio.gather(check(h), check(h))
    await check(h)
    breached = await h.emitted("sla.breached")
    assert [d for _, d in breached] == [
        {
            "ticket_id": "t-u",
            "clock": "first_response",
            "tier": "high",
            "priority": "urgent",
            "target_s": 300,
            "elapsed_s": 360,
        }
    ]

    # In progress, then waiting on the customer after 3h55m used: that pauses the resolution clock
    # (4 h for VIP urgent), so at 5 h there is no resolution breach.
    await h.handle(
        on_ticket, event("ticket.updated", "c-vip", {"ticket_id": "t-u", "status": "in_progress"}, at=h.clock.now)
    )
    h.clock.now = T0 + timedelta(hours=3, minutes=55)
    await h.handle(
        on_ticket,
        event("ticket.updated", "c-vip", {"ticket_id": "t-u", "status": "waiting_on_customer"}, at=h.clock.now),
    )
    h.clock.now = T0 + timedelta(hours=5)
    await check(h)
    assert [d["clock"] for _, d in await h.emitted("sla.breached") if d["ticket_id"] == "t-u"] == ["first_response"]

    # Back in progress: the clock resumes with 5 minutes left and breaches 6 minutes later, once.
    await h.handle(
        on_ticket, event("ticket.updated", "c-vip", {"ticket_id": "t-u", "status": "in_progress"}, at=h.clock.now)
    )
    h.clock.now = T0 + timedelta(hours=5, minutes=6)
    await asyncio.gather(check(h), check(h))
    clocks = [(d["ticket_id"], d["clock"]) for _, d in await h.emitted("sla.breached")]
    # The low-tier urgent ticket (20 min first response, 16 h resolution) breached its first response too.
    assert sorted(clocks) == [("t-l", "first_response"), ("t-u", "first_response"), ("t-u", "resolution")]
    assert len(await h.rows(select(sla_breaches))) == 3


async def test_breach_found_late_is_still_raised_once_on_the_closing_event(harness: Harness) -> None:
    h = harness
    on_ticket = ticket_handler(h.deps)
    await make_vip(h, "c-1")
    await h.handle(on_ticket, event("ticket.opened", "c-1", {"ticket_id": "t-1", "priority": "urgent"}))
    # No checker ran; the agent answers after 8 minutes and closes: the breach is detected on that event.
    h.clock.now = T0 + timedelta(minutes=8)
    closing = event("ticket.closed", "c-1", {"ticket_id": "t-1"}, at=h.clock.now)
    await h.handle(on_ticket, closing)
    await check(h)
    assert [d["clock"] for _, d in await h.emitted("sla.breached")] == ["first_response"]


async def test_customer_erased_deletes_tickets_responses_and_tokens(harness: Harness) -> None:
    h = harness
    await h.handle(ticket_handler(h.deps), event("ticket.opened", "c-x", {"ticket_id": "t-x", "text": "hello"}))
    await h.handle(ticket_handler(h.deps), event("ticket.opened", "c-keep", {"ticket_id": "t-k"}))
    await h.handle(survey_response_handler(h.deps), event("survey.response", "c-x", {"nps": 3, "comment": "slow"}))
    await make_vip(h, "c-x")
    async with h.sessions() as session, session.begin():
        await session.execute(surveys.insert().values(survey_id="s-1", name="n", kind="nps"))
        await issue_link(h.deps, session, "s-1", "c-x", timedelta(days=1))

    await h.handle(customer_handlers.on_profile_change, event("customer.erased", "c-x", {"customer_id": "c-x"}))

    for table in (tickets, survey_responses, survey_tokens, customers):
        assert await h.rows(select(table).where(table.c.customer_id == "c-x")) == [], table.name
    assert len(await h.rows(select(tickets))) == 1  # other customers untouched
