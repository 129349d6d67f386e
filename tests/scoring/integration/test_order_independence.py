"""Scoring's state after a set of events does not depend on their arrival order, their batching or duplicates, and
an erased customer never comes back from an event of before the erasure (real PostgreSQL, handlers as the consumer
loop calls them)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from libs.common.envelope import CloudEvent
from services.scoring.adapters.tables import facts, messaging, purchases, scores
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, feedback_event, harness, profile_updated, purchase

T0 = datetime(2025, 3, 1, 9, tzinfo=UTC)
COMPLAINT_OPEN_DAYS = 5.0
_people = itertools.count()


@pytest.fixture
async def replay(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated, clock_mode="replay", scoring_complaint_open_days=COMPLAINT_OPEN_DAYS):
        yield h


def history(person: str) -> list[CloudEvent]:
    """One customer: orders on four days (two on one day, one order sent twice under two event ids, one a late
    backfill of an early day), profile documents whose version order differs from their time order (a late
    purchase's document is newer but about an older event), NPS answers from feedback (two at one instant) and
    profile's copies of them, complaints whose gaps straddle the open window (5 days here), and an SLA breach."""
    at = [T0 + timedelta(days=n) for n in range(12)]
    return [
        purchase(f"{person}-b1", person, at[0], 30.0, order_id="o1"),
        purchase(f"{person}-b2", person, at[3], 20.0, order_id="o2"),
        purchase(f"{person}-b3", person, at[3] + timedelta(hours=2), 5.0, order_id="o3"),
        purchase(f"{person}-b3-resent", person, at[3] + timedelta(hours=2), 5.0, order_id="o3"),
        purchase(f"{person}-b4", person, at[9], 60.0, order_id="o4"),
        purchase(f"{person}-b5-backfill", person, at[1], 15.0, order_id="o5"),
        profile_updated(f"{person}-p1", person, at[0], version=1, open_tickets=1),
        profile_updated(
            f"{person}-p2", person, at[10], version=2, last_login_at=at[10].isoformat(), open_tickets=0, last_nps=4
        ),
        profile_updated(
            f"{person}-p3", person, at[1], version=3, last_login_at=at[10].isoformat(), open_tickets=2, last_nps=9
        ),
        feedback_event(f"{person}-f1", person, at[5], "feedback.received", {"score_type": "nps", "score": 4}),
        feedback_event(f"{person}-f2", person, at[6], "sla.breached", {"ticket_id": "t-1", "clock": "resolution"}),
        feedback_event(f"{person}-f3", person, at[7], "feedback.received", {"score_type": "nps", "score": 9}),
        feedback_event(f"{person}-f4", person, at[7], "feedback.received", {"score_type": "nps", "score": 3}),
        *(
            feedback_event(f"{person}-c{day}", person, at[day], "feedback.received", {"score_type": "complaint"})
            for day in (2, 6, 10)
        ),
    ]


EVENTS = len(history("count"))


def handler_of(h: Harness, event: CloudEvent) -> Any:
    if event.type == "purchase":
        return h.consumers.handle_purchases
    if event.type in ("feedback.received", "sla.breached"):
        return h.consumers.handle_feedback
    return h.consumers.handle_profile_changes


async def deliver_in_batches(h: Harness, arrival: Sequence[CloudEvent], batch: int) -> None:
    """Consecutive events of one consumer go in one batch of at most ``batch``, as a consumer's poll would."""
    pending: list[CloudEvent] = []
    for event in arrival:
        if pending and (handler_of(h, pending[0]) != handler_of(h, event) or len(pending) >= batch):
            await h.deliver(handler_of(h, pending[0]), *pending)
            pending = []
        pending.append(event)
    if pending:
        await h.deliver(handler_of(h, pending[0]), *pending)


async def state_of(h: Harness, customer_id: str) -> dict[str, Any]:
    async with h.sessions() as session:
        row = (await session.execute(select(facts).where(facts.c.customer_id == customer_id))).first()
        document = await session.scalar(select(scores.c.score).where(scores.c.customer_id == customer_id))
        orders = await session.scalar(
            select(func.count()).select_from(purchases).where(purchases.c.customer_id == customer_id)
        )
    kept = {} if row is None else {k: v for k, v in row._mapping.items() if k not in ("customer_id", "updated_at")}
    if "complaints" in kept:
        kept["complaints"] = sorted(kept["complaints"].values())  # keyed by event ids, which name the person
    fields = ("total_spend", "purchase_count", "tier", "as_of", "churn_risk", "reasons", "rfm")
    return {
        "facts": kept,
        "orders": orders,
        "score": None if document is None else {k: document[k] for k in fields},
    }


async def test_any_arrival_order_batching_and_duplicates_give_the_same_state(replay: Harness) -> None:
    loop = asyncio.get_running_loop()

    async def run(order: list[int], duplicates: list[int], batch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        person = f"c-{next(_people)}"
        events = history(person)
        arrival = [events[i] for i in order] + [events[i] for i in duplicates]
        await deliver_in_batches(replay, arrival, batch)
        got = await state_of(replay, person)
        truth_person = f"c-{next(_people)}"
        truth_events = [
            CloudEvent(e.id.replace(person, truth_person, 1), e.source, e.type, truth_person, e.time, e.data)
            for e in history(truth_person)
        ]
        ordered = sorted(truth_events, key=lambda e: (e.time, e.id))
        await deliver_in_batches(replay, ordered, 1)
        return got, await state_of(replay, truth_person)

    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        order=st.permutations(list(range(EVENTS))),
        duplicates=st.lists(st.integers(0, EVENTS - 1), max_size=4),
        batch=st.integers(1, 5),
    )
    def same_state(order: list[int], duplicates: list[int], batch: int) -> None:
        got, truth = asyncio.run_coroutine_threadsafe(run(order, duplicates, batch), loop).result(60)
        facts_got, facts_truth = dict(got["facts"]), dict(truth["facts"])
        assert facts_got == facts_truth, (order, duplicates, batch)
        assert got["orders"] == truth["orders"] == 5
        assert got["score"] == truth["score"]
        # purchase days: T0, T0+1 (the backfill), T0+3 (two orders), T0+9; repeat days spend 15 + 25 + 60
        assert (facts_got["purchase_days"], facts_got["repeat_day_spend"], facts_got["total_spend"]) == (
            4,
            100.0,
            130.0,
        )
        assert facts_got["open_tickets"] == 2 and facts_got["profile_version"] == 3
        # the newest answer (of two at one instant, the higher), whichever source told first
        assert facts_got["last_nps"] == 9
        # complaints at days 2, 6, 10: each within 5 days of the one before, so all three are one open stretch
        assert facts_got["recent_complaints"] == 3

    await asyncio.to_thread(same_state)


async def outbox_about(h: Harness, customer_id: str) -> int:
    async with h.sessions() as session:
        rows = (await session.execute(select(messaging.outbox.c.headers))).scalars().all()
    return sum(1 for headers in rows if dict(headers).get("ce_subject") == customer_id)


async def held_anywhere(h: Harness, customer_id: str) -> list[str]:
    found = []
    async with h.sessions() as session:
        for table in ("facts", "scores", "purchases", "customer_aliases"):
            column = "alias_id" if table == "customer_aliases" else "customer_id"
            n = await session.scalar(
                text(f"SELECT count(*) FROM scoring.{table} WHERE {column} = :id"), {"id": customer_id}
            )
            if n:
                found.append(table)
    return found


async def test_an_erased_customer_never_comes_back_from_an_event_of_before(replay: Harness) -> None:
    loop = asyncio.get_running_loop()

    async def run(
        order: list[int], cut: int, batch: int, replayed_as_new: bool
    ) -> tuple[list[str], int, dict[str, Any]]:
        person = f"e-{next(_people)}"
        events = history(person)
        erased_at = T0 + timedelta(days=20)
        erasure = CloudEvent(
            f"{person}-erased", "retain/profile", "customer.erased", person, erased_at, {"customer_id": person}
        )
        arrival = [events[i] for i in order]
        await deliver_in_batches(replay, arrival[:cut], batch)
        await replay.profile(erasure)
        emitted_before = await outbox_about(replay, person)
        # the rest in flight, then the whole history again (a replay under the same ids, or a backfill under new ones)
        again = [
            CloudEvent(f"again-{e.id}" if replayed_as_new else e.id, e.source, e.type, e.subject, e.time, e.data)
            for e in events
        ]
        await deliver_in_batches(replay, arrival[cut:] + again, batch)
        left = await held_anywhere(replay, person)
        emitted_after = await outbox_about(replay, person) - emitted_before
        # the customer coming back later starts afresh with nothing of the past
        await replay.purchases(purchase(f"{person}-back", person, erased_at + timedelta(days=1), 7.0, order_id="o-new"))
        return left, emitted_after, await state_of(replay, person)

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        order=st.permutations(list(range(EVENTS))),
        cut=st.integers(0, EVENTS),
        batch=st.integers(1, 4),
        replayed_as_new=st.booleans(),
    )
    def nobody_comes_back(order: list[int], cut: int, batch: int, replayed_as_new: bool) -> None:
        left, emitted, back = asyncio.run_coroutine_threadsafe(run(order, cut, batch, replayed_as_new), loop).result(60)
        assert left == [] and emitted == 0, (order, cut, batch, left, emitted)
        assert back["orders"] == 1 and back["facts"]["total_spend"] == 7.0 and back["facts"]["open_tickets"] == 0

    await asyncio.to_thread(nobody_comes_back)
