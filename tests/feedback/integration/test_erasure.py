"""Erasure is final in feedback: nothing from before it comes back, whatever the order, and a racing write loses."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from libs.common.consumer import EventHandler, HandlerContext, PoisonEvent
from libs.common.envelope import CloudEvent
from services.feedback.adapters.tables import (
    aliases,
    customers,
    erasures,
    sla_breaches,
    survey_responses,
    tickets,
)
from services.feedback.handlers import customers as customer_handlers
from services.feedback.handlers.surveys import survey_response_handler
from services.feedback.handlers.tickets import ticket_handler
from tests.feedback.integration.harness import T0, Harness, event

_customers = itertools.count()
HELD = (tickets, sla_breaches, survey_responses, customers)


def history(customer: str, helpdesk_id: str) -> list[tuple[str, CloudEvent]]:
    """(handler name, event) of one customer's life in feedback, all before the erasure at T0 + 1h."""
    ticket = f"t-{customer}"
    at = [T0 + timedelta(minutes=n) for n in range(10)]
    return [
        ("score", event("score.changed", customer, {"tier": "high"}, at[0])),
        ("profile", event("profile.updated", customer, {"segments_entered": ["vip"], "segments_left": []}, at[1])),
        ("ticket", event("ticket.opened", customer, {"ticket_id": ticket, "priority": "urgent", "text": "hi"}, at[2])),
        ("ticket", event("ticket.updated", customer, {"ticket_id": ticket, "status": "in_progress"}, at[3])),
        ("survey", event("survey.response", customer, {"nps": 2, "comment": "slow parcel"}, at[4])),
        ("score", event("threshold.crossed", customer, {"kind": "tier_down", "old": "high", "new": "low"}, at[5])),
        ("profile", event("profile.aliased", customer, {"customer_id": customer, "alias_id": helpdesk_id}, at[6])),
        ("ticket", event("ticket.opened", helpdesk_id, {"ticket_id": f"{ticket}-hd", "text": "again"}, at[7])),
        ("ticket", event("ticket.closed", customer, {"ticket_id": ticket}, at[8])),
    ]


def erasure_of(customer: str) -> CloudEvent:
    return event("customer.erased", customer, {"customer_id": customer}, T0 + timedelta(hours=1))


def handlers(h: Harness) -> dict[str, EventHandler]:
    return {
        "score": customer_handlers.on_score_change,
        "profile": customer_handlers.on_profile_change,
        "ticket": ticket_handler(h.deps),
        "survey": survey_response_handler(h.deps),
    }


async def held_by(h: Harness, *ids: str) -> dict[str, list[Any]]:
    found = {table.name: await h.rows(select(table).where(table.c.customer_id.in_(ids))) for table in HELD}
    found["customer_aliases"] = await h.rows(
        select(aliases.table).where(aliases.table.c.customer_id.in_(ids) | aliases.table.c.alias_id.in_(ids))
    )
    return {name: rows for name, rows in found.items() if rows}


async def test_events_from_before_an_erasure_recreate_nothing_in_any_order(harness: Harness) -> None:
    h = harness
    loop = asyncio.get_running_loop()
    by_name = handlers(h)

    async def run(order: list[int], redeliver: list[int]) -> dict[str, list[Any]]:
        customer = f"c-{next(_customers)}"
        helpdesk_id = f"hd-{customer}"
        # Profile announces an erasure for every id the person was known under, each on its own key.
        steps = [
            *history(customer, helpdesk_id),
            ("profile", erasure_of(customer)),
            ("profile", erasure_of(helpdesk_id)),
        ]
        for index in [*order, *redeliver]:
            name, ev = steps[index]
            try:
                await h.handle(by_name[name], ev)
            except PoisonEvent:
                pass  # a ticket change before its ticket was opened is dead-lettered, as live
        return await held_by(h, customer, helpdesk_id)

    steps = len(history("x", "y")) + 2

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        order=st.permutations(list(range(steps))),
        redeliver=st.lists(st.integers(0, steps - 1), max_size=4),
    )
    def nothing_survives(order: list[int], redeliver: list[int]) -> None:
        left = asyncio.run_coroutine_threadsafe(run(order, redeliver), loop).result(60)
        assert left == {}, (order, redeliver, left)

    await asyncio.to_thread(nothing_survives)


async def test_the_erasure_records_every_joined_id_and_a_customer_who_comes_back_starts_afresh(
    harness: Harness,
) -> None:
    h = harness
    by_name = handlers(h)
    for name, ev in history("c-back", "hd-back"):
        await h.handle(by_name[name], ev)
    await h.handle(customer_handlers.on_profile_change, erasure_of("c-back"))
    recorded = await h.rows(select(erasures.table.c.customer_id, erasures.table.c.erased_at))
    assert {(row["customer_id"], row["erased_at"]) for row in recorded} == {
        ("c-back", T0 + timedelta(hours=1)),
        ("hd-back", T0 + timedelta(hours=1)),
    }
    assert await held_by(h, "c-back", "hd-back") == {}

    # Newer than the erasure: the customer came back, under each id, with nothing of the past.
    back = T0 + timedelta(hours=2)
    await h.handle(by_name["ticket"], event("ticket.opened", "hd-back", {"ticket_id": "t-new"}, back))
    await h.handle(by_name["score"], event("score.changed", "c-back", {"tier": "medium"}, back))
    left = await held_by(h, "c-back", "hd-back")
    assert [(row["ticket_id"], row["customer_id"]) for row in left["tickets"]] == [("t-new", "hd-back")]
    assert [(row["customer_id"], row["tier"]) for row in left["customers"]] == [("c-back", "medium")]
    assert set(left) == {"tickets", "customers"}


async def test_a_write_in_flight_when_the_erasure_arrives_is_erased_with_the_rest(harness: Harness) -> None:
    """A score handled in one transaction while the erasure runs in another (two consumers, two topics)."""
    h = harness
    scored = event("score.changed", "c-race", {"tier": "high"}, T0)
    async with h.sessions() as in_flight, in_flight.begin():
        await customer_handlers.on_score_change(HandlerContext(in_flight, h.deps.outbox), scored)
        erasing = asyncio.create_task(h.handle(customer_handlers.on_profile_change, erasure_of("c-race")))
        await asyncio.sleep(0.5)
        # The erasure waits for the customer's lock, which the in-flight write holds until it commits.
        assert not erasing.done()
    await asyncio.wait_for(erasing, 10)
    assert await held_by(h, "c-race") == {}

    # The other way round: the erasure holds the lock, a score that overtook nothing arrives late.
    async with h.sessions() as erasure, erasure.begin():
        await customer_handlers.on_profile_change(HandlerContext(erasure, h.deps.outbox), erasure_of("c-race-2"))
        late = asyncio.create_task(
            h.handle(customer_handlers.on_score_change, event("score.changed", "c-race-2", {"tier": "high"}, T0))
        )
        await asyncio.sleep(0.5)
        assert not late.done()
    await asyncio.wait_for(late, 10)
    assert await held_by(h, "c-race-2") == {}
