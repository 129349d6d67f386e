"""A consumer batch holding the events of several customers, several each, leaves the state that handling the same
events one by one in the same order leaves: facts, score, stored orders and refunds, due time, and a history whose
newest entry is the score (real PostgreSQL, handlers as the consumer loop calls them). The batch path writes each
table once per batch in bulk; this is what keeps it honest."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from libs.common.envelope import CloudEvent
from services.scoring.adapters.tables import due_times, facts, purchases, refunds, score_history, scores
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, feedback_event, harness, profile_updated, purchase

T0 = datetime(2025, 5, 1, 8, tzinfo=UTC)
CUSTOMERS = 3
_runs = itertools.count()


@pytest.fixture
async def replay(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated, clock_mode="replay"):
        yield h


def refund(event_id: str, customer: str, at: datetime, amount: float, order_id: str) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="shop",
        type="refund",
        subject=customer,
        time=at,
        data={"order_id": order_id, "amount": amount, "currency": "USD"},
    )


def events_of(customer: str, n: int) -> list[CloudEvent]:
    """Orders on three days (one sent twice), a partial refund, profile documents and feedback of one customer;
    amounts differ per customer so that their scores differ."""
    at = [T0 + timedelta(days=day, hours=n) for day in range(8)]
    base = 10.0 * (n + 1)
    return [
        purchase(f"{customer}-b1", customer, at[0], base, order_id="o1"),
        purchase(f"{customer}-b2", customer, at[2], base * 2, order_id="o2"),
        purchase(f"{customer}-b2-again", customer, at[2], base * 2, order_id="o2"),
        purchase(f"{customer}-b3", customer, at[5], base * 3, order_id="o3"),
        refund(f"{customer}-r1", customer, at[6], base / 2, order_id="o2"),
        profile_updated(f"{customer}-p1", customer, at[1], version=1, open_tickets=1),
        profile_updated(f"{customer}-p2", customer, at[6], version=2, last_login_at=at[6].isoformat(), last_nps=8),
        feedback_event(f"{customer}-f1", customer, at[3], "feedback.received", {"score_type": "complaint"}),
        feedback_event(f"{customer}-f2", customer, at[4], "feedback.received", {"score_type": "nps", "score": 6}),
    ]


def consumer_of(h: Harness, event: CloudEvent) -> Any:
    if event.type in ("purchase", "refund"):
        return h.consumers.handle_purchases
    if event.type in ("feedback.received", "sla.breached"):
        return h.consumers.handle_feedback
    return h.consumers.handle_profile_changes


async def deliver(h: Harness, arrival: Sequence[CloudEvent], batch: int) -> None:
    """Consecutive events of one consumer go in one batch of at most ``batch`` (whoever they are about)."""
    pending: list[CloudEvent] = []
    for event in arrival:
        if pending and (consumer_of(h, pending[0]) != consumer_of(h, event) or len(pending) >= batch):
            await h.deliver(consumer_of(h, pending[0]), *pending)
            pending = []
        pending.append(event)
    if pending:
        await h.deliver(consumer_of(h, pending[0]), *pending)


async def state_of(h: Harness, customer: str) -> dict[str, Any]:
    async with h.sessions() as session:
        row = (await session.execute(select(facts).where(facts.c.customer_id == customer))).one()
        document = await session.scalar(select(scores.c.score).where(scores.c.customer_id == customer))
        orders = (
            await session.execute(
                select(purchases.c.order_id, purchases.c.purchased_at, purchases.c.amount)
                .where(purchases.c.customer_id == customer)
                .order_by(purchases.c.order_id)
            )
        ).all()
        returned = (
            await session.execute(
                select(refunds.c.order_id, refunds.c.amount)
                .where(refunds.c.customer_id == customer)
                .order_by(refunds.c.event_id)
            )
        ).all()
        due = await session.scalar(select(due_times.c.due_at).where(due_times.c.customer_id == customer))
        newest = (
            await session.execute(
                select(score_history.c.tier, score_history.c.stage, score_history.c.churn_risk)
                .where(score_history.c.customer_id == customer)
                .order_by(score_history.c.recorded_at.desc())
                .limit(1)
            )
        ).one()
    kept = {k: v for k, v in row._mapping.items() if k not in ("customer_id", "updated_at")}
    kept["complaints"] = sorted(kept["complaints"].values())  # keyed by event ids, which name the customer
    assert document is not None
    assert (newest.tier, newest.stage) == (document["tier"], document["stage"])
    return {
        "facts": kept,
        "score": {k: v for k, v in document.items() if k != "customer_id"},
        "orders": [tuple(o) for o in orders],
        "refunds": [tuple(r) for r in returned],
        "due": due,
    }


def renamed(events: list[CloudEvent], old: str, new: str) -> list[CloudEvent]:
    return [
        CloudEvent(e.id.replace(old, new, 1), e.source, e.type, e.subject.replace(old, new, 1), e.time, e.data)
        for e in events
    ]


async def test_a_batch_of_several_customers_gives_the_state_of_one_by_one(replay: Harness) -> None:
    loop = asyncio.get_running_loop()
    # the replay clock past every event first, so both runs score as of the same instant
    await replay.purchases(purchase("clock", "clock-setter", T0 + timedelta(days=30), 1.0))
    per_customer = len(events_of("count", 0))

    async def run(order: list[int], batch: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        run_id = next(_runs)
        batched = [f"bq{run_id}x{n}" for n in range(CUSTOMERS)]
        single = [f"sq{run_id}x{n}" for n in range(CUSTOMERS)]
        every = [event for n, customer in enumerate(batched) for event in events_of(customer, n)]
        arrival = [every[i] for i in order]
        await deliver(replay, arrival, batch)
        alone = arrival
        for old, new in zip(batched, single, strict=True):
            alone = renamed(alone, old, new)
        await deliver(replay, alone, 1)
        return [(await state_of(replay, b), await state_of(replay, s)) for b, s in zip(batched, single, strict=True)]

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(order=st.permutations(list(range(CUSTOMERS * per_customer))), batch=st.integers(2, 12))
    def same_state(order: list[int], batch: int) -> None:
        pairs = asyncio.run_coroutine_threadsafe(run(order, batch), loop).result(120)
        for got, truth in pairs:
            assert got == truth, (order, batch)
            assert len(got["orders"]) == 3 and len(got["refunds"]) == 1

    await asyncio.to_thread(same_state)
