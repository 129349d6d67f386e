"""Campaign's batch paths give what one event per transaction gives, whatever the batch holds.

A partition batch is handled in one transaction with set-at-a-time reads and writes; these tests compare it with
handling each event alone (the consumer loop's fallback and the behaviour before batching), redeliver and crash
batches, edit a campaign between batches, erase a customer before their late events, and run the consumers side
by side on the same customers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from services.campaign.adapters import bulk
from services.campaign.adapters.tables import (
    actions,
    coupons,
    customer_facts,
    erasures,
    loyalty_accounts,
    messaging,
    purchases,
    scheduled_triggers,
)
from tests.campaign.integration.harness import NOON, Harness, event, make_harness
from tests.conftest import Isolation, Stack

BatchHandler = Callable[[HandlerContext, Sequence[CloudEvent]], Awaitable[None]]
CUSTOMERS = ("c-1", "c-2", "c-3")
ORDERS = ("o-1", "o-2", "o-3", "o-4", "o-5")
CUSTOMER_TOPIC = "customer-events"
SCORE_TOPIC = "score-changes"
PROFILE_TOPIC = "profile-changes"
_databases = itertools.count()

LOYALTY_COUPON = {
    "name": "gold welcome",
    "trigger": {"kind": "loyalty_level_changed", "to": "gold"},
    "actions": [{"type": "coupon", "kind": "amount", "value": "25", "currency": "USD"}],
}
ANY_LEVEL_ALERT = {
    "name": "level moved",
    "trigger": {"kind": "loyalty_level_changed"},
    "actions": [{"type": "alert", "message": "{name} now has {points} points"}],
}
AFTER_PURCHASE = {
    "name": "thanks",
    "trigger": {"kind": "days_after_purchase", "anchor": "last", "days": 30},
    "actions": [{"type": "coupon", "kind": "percent", "value": "5"}],
}


def isolation(stack: Stack) -> Isolation:
    name = f"b{os.getpid()}_{next(_databases)}"
    stack.postgres.create_database(name)
    return Isolation(stack, database=name, prefix=f"{name}-")


async def campaigns_on(h: Harness) -> None:
    await h.set_builtin(True)  # the top-tier welcome coupon on tier_up to high
    await h.add_campaign("gold", LOYALTY_COUPON)
    await h.add_campaign("moved", ANY_LEVEL_ALERT)
    await h.add_campaign("thanks", AFTER_PURCHASE)


@pytest.fixture
async def twins(stack: Stack) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two campaign databases with the same campaigns: one for event-at-a-time, one for batches."""
    async for one in make_harness(isolation(stack)):
        async for other in make_harness(isolation(stack)):
            for h in (one, other):
                await campaigns_on(h)
            yield one, other


def handler_for(h: Harness, topic: str) -> BatchHandler:
    return {
        CUSTOMER_TOPIC: h.handlers.handle_customer_events,
        SCORE_TOPIC: h.handlers.handle_score_changes,
        PROFILE_TOPIC: h.handlers.handle_profile_changes,
    }[topic]


async def run_batch(h: Harness, topic: str, events: Sequence[CloudEvent]) -> None:
    async with h.sessions() as session, session.begin():
        await handler_for(h, topic)(HandlerContext(session, h.deps.outbox), events)


async def snapshot(h: Harness) -> dict[str, Any]:
    """Everything campaign holds that events decide, without what is random or wall-clock (codes, row ids)."""
    async with h.sessions() as session:

        async def rows(query: Any) -> list[tuple[Any, ...]]:
            return sorted(tuple(row) for row in (await session.execute(query)).all())

        facts = [c for c in customer_facts.c if c.name != "updated_at"]
        loyalty = [c for c in loyalty_accounts.c if c.name != "updated_at"]
        outbox = (await session.execute(select(messaging.outbox.c.headers))).scalars()
        return {
            "facts": await rows(select(*facts)),
            "purchases": await rows(select(purchases)),
            "loyalty": await rows(select(*loyalty)),
            "actions": await rows(
                select(
                    actions.c.idempotency_key,
                    actions.c.customer_id,
                    actions.c.campaign_id,
                    actions.c.kind,
                    actions.c.status,
                    actions.c.reason,
                    actions.c.variant,
                    actions.c.decided_at,
                    actions.c.payload["body"].astext,
                )
            ),
            "coupons": await rows(
                select(coupons.c.customer_id, coupons.c.campaign_id, coupons.c.discount_type, coupons.c.value)
            ),
            "schedule": await rows(
                select(
                    scheduled_triggers.c.campaign_id,
                    scheduled_triggers.c.customer_id,
                    scheduled_triggers.c.window,
                    scheduled_triggers.c.fire_at,
                    scheduled_triggers.c.status,
                ).where(scheduled_triggers.c.status != "cancelled")
            ),
            "emitted": sorted(
                (dict(headers)["ce_type"], dict(headers)["ce_subject"], dict(headers)["ce_id"]) for headers in outbox
            ),
        }


_event_ids = itertools.count()


@st.composite
def customer_event(draw: st.DrawFn) -> tuple[str, CloudEvent]:
    customer = draw(st.sampled_from(CUSTOMERS))
    at = NOON - timedelta(days=draw(st.integers(0, 40)), hours=draw(st.integers(0, 23)))
    kind = draw(st.sampled_from(["purchase", "purchase", "purchase", "refund", "login", "consent", "score", "cross"]))
    ev_id = f"p-{next(_event_ids)}"
    if kind == "purchase":
        data: dict[str, Any] = {
            "order_id": draw(st.sampled_from(ORDERS)),
            "amount": draw(st.sampled_from([40, 300, 900, 2500, 6000])),
            "currency": "USD",
        }
        return CUSTOMER_TOPIC, event("purchase", customer, data, at, ev_id)
    if kind == "refund":
        return CUSTOMER_TOPIC, event("refund", customer, {"order_id": draw(st.sampled_from(ORDERS))}, at, ev_id)
    if kind == "login":
        return CUSTOMER_TOPIC, event("login", customer, {"channel": "app"}, at, ev_id)
    if kind == "consent":
        consent = {"channel": draw(st.sampled_from(["email", "sms"])), "granted": draw(st.booleans())}
        return CUSTOMER_TOPIC, event("consent.changed", customer, consent, at, ev_id)
    if kind == "score":
        score = {"tier": draw(st.sampled_from(["low", "medium", "high"])), "stage": "active", "churn_risk": 0.2}
        return SCORE_TOPIC, event("score.changed", customer, score, at, ev_id)
    crossing = {"kind": "tier_up", "old": "medium", "new": draw(st.sampled_from(["medium", "high"]))}
    return SCORE_TOPIC, event("threshold.crossed", customer, crossing, at, ev_id)


@st.composite
def batched_history(draw: st.DrawFn) -> tuple[list[tuple[str, CloudEvent]], list[list[tuple[str, CloudEvent]]]]:
    """Events in arrival order, and the same sequence cut into consumer batches (one topic each)."""
    history = draw(st.lists(customer_event(), min_size=1, max_size=24))
    batches: list[list[tuple[str, CloudEvent]]] = []
    for item in history:
        starts_new = not batches or batches[-1][-1][0] != item[0] or draw(st.integers(0, 4)) == 0
        if starts_new:
            batches.append([item])
        else:
            batches[-1].append(item)
    return history, batches


async def reset(h: Harness) -> None:
    async with h.sessions() as session, session.begin():
        await session.execute(
            text(
                "TRUNCATE campaign.customer_facts, campaign.purchases, campaign.loyalty_accounts, campaign.actions,"
                " campaign.coupons, campaign.assignments, campaign.scheduled_triggers, campaign.outbox,"
                " campaign.customer_erasures"
            )
        )


async def test_a_batch_gives_the_state_of_one_event_at_a_time(twins: tuple[Harness, Harness]) -> None:
    one_by_one, batched = twins
    loop = asyncio.get_running_loop()
    compared: list[int] = []

    def run(coroutine: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(60)  # type: ignore[arg-type]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=batched_history())
    def same_state(case: tuple[list[tuple[str, CloudEvent]], list[list[tuple[str, CloudEvent]]]]) -> None:
        history, batches = case
        run(reset(one_by_one))
        run(reset(batched))
        for topic, ev in history:
            run(run_batch(one_by_one, topic, [ev]))
        for batch in batches:
            run(run_batch(batched, batch[0][0], [ev for _, ev in batch]))
        expected, got = run(snapshot(one_by_one)), run(snapshot(batched))
        assert got == expected
        compared.append(len(expected["coupons"]) + len(expected["actions"]))

    await asyncio.to_thread(same_state)
    # The histories reached coupons and alerts, not only facts.
    assert sum(compared) > 0


async def test_a_redelivered_or_crashed_batch_issues_nothing_twice(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    await campaigns_on(h)
    batch = [
        event("purchase", "c-1", {"order_id": "o-1", "amount": 3000, "currency": "USD"}, NOON - timedelta(days=2)),
        event("purchase", "c-2", {"order_id": "o-9", "amount": 100, "currency": "USD"}, NOON - timedelta(days=2)),
        event("purchase", "c-1", {"order_id": "o-2", "amount": 2500, "currency": "USD"}, NOON - timedelta(days=1)),
        event("login", "c-2", {"channel": "app"}, NOON),
    ]
    real_upsert = bulk.upsert_loyalty
    crashes = 0

    async def crash_once(session: Any, rows: Any) -> None:
        nonlocal crashes
        if crashes == 0:
            crashes += 1
            raise RuntimeError("process died in the middle of the batch")
        await real_upsert(session, rows)

    monkeypatch.setattr(bulk, "upsert_loyalty", crash_once)
    with pytest.raises(RuntimeError):
        await run_batch(h, CUSTOMER_TOPIC, batch)
    crashed = await snapshot(h)
    assert (crashed["purchases"], crashed["loyalty"], crashed["coupons"], crashed["actions"]) == ([], [], [], [])
    await run_batch(h, CUSTOMER_TOPIC, batch)  # the redelivery after the crash
    first = await snapshot(h)
    await run_batch(h, CUSTOMER_TOPIC, batch)  # and once more (a rebalance, a replay)
    await run_batch(h, CUSTOMER_TOPIC, list(reversed(batch[:3])))
    assert await snapshot(h) == first
    # c-1 went normal -> silver -> gold in one batch: one gold coupon, an alert for each move, 5,500 points, once.
    assert [(c[0], c[1]) for c in first["coupons"]] == [("c-1", "gold")]
    assert sorted((a[1], a[2], a[3]) for a in first["actions"]) == [
        ("c-1", "gold", "coupon"),
        ("c-1", "moved", "alert"),
        ("c-1", "moved", "alert"),
    ]
    assert [(row[0], row[1], row[2]) for row in first["loyalty"]] == [("c-1", 5500, "gold"), ("c-2", 100, "normal")]


async def test_an_edited_campaign_takes_effect_for_the_next_batch(harness: Harness) -> None:
    h = harness
    await h.add_campaign("gold", LOYALTY_COUPON)

    def big_purchase(customer: str) -> CloudEvent:
        return event("purchase", customer, {"order_id": f"o-{customer}", "amount": 6000, "currency": "USD"})

    await run_batch(h, CUSTOMER_TOPIC, [big_purchase("c-1")])
    edited = {**LOYALTY_COUPON, "actions": [{"type": "coupon", "kind": "amount", "value": "40", "currency": "USD"}]}
    async with h.sessions() as session, session.begin():
        await session.execute(
            text("UPDATE campaign.campaigns SET definition = CAST(:d AS jsonb) WHERE id = 'gold'"),
            {"d": json.dumps({"status": "active", **edited})},
        )
    await run_batch(h, CUSTOMER_TOPIC, [big_purchase("c-2")])
    await h.set_status("gold", "paused")
    await run_batch(h, CUSTOMER_TOPIC, [big_purchase("c-3")])
    got = (await snapshot(h))["coupons"]
    assert [(customer, value) for customer, _, _, value in got] == [("c-1", 25), ("c-2", 40)]


async def test_an_erased_customer_comes_back_through_no_later_event(harness: Harness) -> None:
    h = harness
    await campaigns_on(h)
    purchase = event("purchase", "c-1", {"order_id": "o-1", "amount": 300, "currency": "USD"}, NOON)
    await run_batch(h, CUSTOMER_TOPIC, [purchase])
    await run_batch(h, PROFILE_TOPIC, [event("customer.erased", "c-1", {"customer_id": "c-1"})])
    late = [
        event("purchase", "c-1", {"order_id": "o-2", "amount": 9000, "currency": "USD"}, NOON),
        event("login", "c-1", {"channel": "app"}, NOON),
        event("consent.changed", "c-1", {"channel": "email", "granted": True}, NOON),
    ]
    await run_batch(h, CUSTOMER_TOPIC, late)
    await run_batch(h, CUSTOMER_TOPIC, [purchase])  # the first purchase redelivered
    await run_batch(
        h,
        SCORE_TOPIC,
        [
            event("score.changed", "c-1", {"tier": "high", "stage": "active"}),
            event("threshold.crossed", "c-1", {"kind": "tier_up", "old": "medium", "new": "high"}),
        ],
    )
    await run_batch(h, PROFILE_TOPIC, [event("profile.updated", "c-1", {"metrics": {"name": "Ann"}})])
    state = await snapshot(h)
    assert {key: value for key, value in state.items() if key != "emitted"} == {
        "facts": [],
        "purchases": [],
        "loyalty": [],
        "actions": [],
        "coupons": [],
        "schedule": [],
    }
    async with h.sessions() as session:
        assert list((await session.execute(select(erasures.table.c.customer_id))).scalars()) == ["c-1"]


async def test_erasure_in_the_middle_of_a_batch_drops_what_follows_it(harness: Harness) -> None:
    h = harness
    await campaigns_on(h)
    await run_batch(
        h,
        PROFILE_TOPIC,
        [
            event("profile.updated", "c-1", {"metrics": {"name": "Ann"}}),
            event("customer.erased", "c-1", {"customer_id": "c-1"}),
            event("profile.updated", "c-1", {"metrics": {"name": "Ann"}, "segments_entered": ["vip"]}),
            event("profile.updated", "c-2", {"metrics": {"name": "Bob"}}),
        ],
    )
    facts = (await snapshot(h))["facts"]
    assert [row[0] for row in facts] == ["c-2"]


@dataclass
class Overlap:
    """Batches of the three consumers over the same customers, each in its own order."""

    h: Harness
    rounds: int = 6

    def customer_batch(self, n: int) -> list[CloudEvent]:
        order = CUSTOMERS if n % 2 else tuple(reversed(CUSTOMERS))
        return [event("purchase", c, {"order_id": f"o-{n}-{c}", "amount": 700, "currency": "USD"}, NOON) for c in order]

    def score_batch(self, n: int) -> list[CloudEvent]:
        order = tuple(reversed(CUSTOMERS)) if n % 2 else CUSTOMERS
        return [event("score.changed", c, {"tier": "high", "stage": "active"}, NOON) for c in order]

    def profile_batch(self, n: int) -> list[CloudEvent]:
        order = (CUSTOMERS[1], CUSTOMERS[2], CUSTOMERS[0])
        return [event("profile.updated", c, {"metrics": {"name": f"n{n}"}}, NOON) for c in order]

    async def consumer(self, topic: str, batches: Callable[[int], list[CloudEvent]]) -> None:
        for n in range(self.rounds):
            await run_batch(self.h, topic, batches(n))


async def test_the_three_consumers_never_deadlock_on_one_customer(harness: Harness) -> None:
    h = harness
    await campaigns_on(h)
    overlap = Overlap(h)
    # A deadlock would surface here as DeadlockDetectedError from one of the three.
    await asyncio.gather(
        overlap.consumer(CUSTOMER_TOPIC, overlap.customer_batch),
        overlap.consumer(SCORE_TOPIC, overlap.score_batch),
        overlap.consumer(PROFILE_TOPIC, overlap.profile_batch),
    )
    state = await snapshot(h)
    assert len(state["purchases"]) == len(CUSTOMERS) * overlap.rounds
    assert {row[0]: row[1] for row in state["loyalty"]} == dict.fromkeys(CUSTOMERS, 700 * overlap.rounds)


async def test_an_event_after_the_erasure_is_the_customer_coming_back_afresh(harness: Harness) -> None:
    h = harness
    await campaigns_on(h)
    await run_batch(
        h, CUSTOMER_TOPIC, [event("purchase", "c-1", {"order_id": "o-1", "amount": 800, "currency": "USD"}, NOON)]
    )
    await run_batch(h, PROFILE_TOPIC, [event("customer.erased", "c-1", {"customer_id": "c-1"}, NOON)])
    later = NOON + timedelta(days=1)
    await run_batch(
        h,
        CUSTOMER_TOPIC,
        [
            event("purchase", "c-1", {"order_id": "o-0", "amount": 500, "currency": "USD"}, NOON),  # before: dropped
            event("purchase", "c-1", {"order_id": "o-2", "amount": 300, "currency": "USD"}, later),
        ],
    )
    state = await snapshot(h)
    assert [(row[0], row[1]) for row in state["purchases"]] == [("c-1", "o-2")]
    assert [(row[0], row[1]) for row in state["loyalty"]] == [("c-1", 300)]
