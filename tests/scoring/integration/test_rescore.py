"""Consumers of scoring: facts, scores and derived events in one transaction (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from services.scoring.adapters.tables import facts, scores
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, feedback_event, harness, of_type, profile_updated, purchase


@pytest.fixture
async def live(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


@pytest.fixture
async def replay(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated, clock_mode="replay"):
        yield h


async def test_small_base_tiers_by_spend_and_emits_one_tier_up(live: Harness) -> None:
    """The end-to-end story: 120.5 is low, 1020.5 crosses into high, 1520.5 stays high."""
    now = datetime.now(UTC) - timedelta(minutes=1)
    await live.purchases(purchase("p1", "c-42", now, 120.5))
    first = await live.score("c-42")
    assert first is not None
    assert (first["tier"], first["stage"], first["value_basis"], first["total_spend"]) == ("low", "new", "spend", 120.5)
    events = await live.emitted()
    assert [kind for kind, _, _ in events] == ["score.changed"]  # a first score is news, but crosses no tier

    await live.purchases(purchase("p2", "c-42", now, 900.0))
    await live.purchases(purchase("p3", "c-42", now, 500.0))
    final = await live.score("c-42")
    assert final is not None and final["tier"] == "high" and final["total_spend"] == 1520.5
    crossings = of_type(await live.emitted(), "threshold.crossed")
    assert [(c["kind"], c["old"], c["new"]) for c in crossings] == [("tier_up", "low", "high")]
    assert crossings[0]["reasons"][0]["numbers"] == {"total_spend": 1020.5}


async def test_same_facts_again_emit_nothing(live: Harness) -> None:
    now = datetime.now(UTC) - timedelta(days=3)
    await live.purchases(purchase("p1", "c-1", now, 50.0, order_id="o-1"))
    await live.profile(profile_updated("u1", "c-1", now, version=1))
    await live.clear_outbox()
    # the same order under another event id (a shop re-sending it) and the same document again: nothing material
    await live.purchases(purchase("p1-again", "c-1", now, 50.0, order_id="o-1"))
    await live.profile(profile_updated("u1-again", "c-1", now, version=1))
    assert await live.emitted() == []
    score = await live.score("c-1")
    assert score is not None and (score["purchase_count"], score["total_spend"]) == (1, 50.0)


async def test_feedback_pushes_churn_risk_over_a_level_with_reasons(live: Harness) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    bought = now - timedelta(days=10)
    await live.purchases(purchase("p1", "c-7", bought, 300.0))
    await live.clear_outbox()
    await live.feedback(
        feedback_event(
            "f1", "c-7", now, "feedback.received", {"score_type": "nps", "score": 3, "sentiment": "negative"}
        ),
        feedback_event(
            "f2",
            "c-7",
            now,
            "sla.breached",
            {
                "ticket_id": "t-1",
                "clock": "resolution",
                "tier": "gold",
                "priority": "high",
                "target_s": 60,
                "elapsed_s": 90,
            },
        ),
    )
    score = await live.score("c-7")
    assert score is not None
    # noisy-or of detractor 0.30 and SLA breach 0.30: 1 - 0.7 * 0.7
    assert score["churn_risk"] == pytest.approx(0.51)
    assert {r["code"] for r in score["reasons"]} == {"detractor_nps", "sla_breach"}
    crossings = of_type(await live.emitted(), "threshold.crossed")
    assert [(c["kind"], c["level"]) for c in crossings] == [("churn_risk_up", 0.5)]
    assert crossings[0]["new"] == pytest.approx(0.51)
    # a batch is scored once per customer: the crossing compares with the score before the batch
    assert crossings[0]["old"] == pytest.approx(0.0)
    assert {r["code"] for r in crossings[0]["reasons"]} == {"detractor_nps", "sla_breach"}


async def test_replay_clock_scores_1997_as_1997_and_sees_stage_changes(replay: Harness) -> None:
    bought = datetime(1997, 3, 1, tzinfo=UTC)
    first = datetime(1997, 1, 2, tzinfo=UTC)
    seen = datetime(1997, 3, 11, tzinfo=UTC)
    await replay.purchases(
        purchase("b1", "c-97", first, 20.0), purchase("b2", "c-97", first + timedelta(days=30), 20.0)
    )
    await replay.purchases(purchase("b3", "c-97", bought, 40.0))
    await replay.profile(profile_updated("p1", "c-97", seen, version=3))
    score = await replay.score("c-97")
    assert score is not None
    assert score["as_of"] == "1997-03-11T00:00:00Z"
    assert score["stage"] == "active"
    assert score["rfm"]["recency_days"] == pytest.approx(10.0)

    await replay.clear_outbox()
    # a login 100 days after the last purchase moves the clock: at risk (no rhythm known -> 90 days)
    later = datetime(1997, 6, 9, tzinfo=UTC)
    await replay.profile(profile_updated("p2", "c-97", later, version=4, last_login_at=later.isoformat()))
    score = await replay.score("c-97")
    assert score is not None and score["as_of"] == "1997-06-09T00:00:00Z" and score["stage"] == "at_risk"
    crossings = of_type(await replay.emitted(), "threshold.crossed")
    assert [(c["kind"], c["old"], c["new"]) for c in crossings] == [("stage_changed", "active", "at_risk")]

    # a document of an older profile version arriving late does not roll the login back, nor the clock
    await replay.profile(profile_updated("p0", "c-97", seen, version=2))
    score = await replay.score("c-97")
    assert score is not None and score["total_spend"] == 80.0 and score["as_of"] == "1997-06-09T00:00:00Z"
    assert score["stage"] == "at_risk"
    # a purchase older than everything applied still counts (a backfill, a second shop), as does the newer
    # profile document it causes, although its event time is older than the login's
    late = datetime(1997, 2, 20, tzinfo=UTC)
    await replay.purchases(purchase("b-late", "c-97", late, 10.0))
    await replay.profile(profile_updated("p-late", "c-97", late, version=5, last_login_at=later.isoformat()))
    score = await replay.score("c-97")
    assert score is not None and (score["purchase_count"], score["total_spend"]) == (4, 90.0)
    assert score["as_of"] == "1997-06-09T00:00:00Z" and score["stage"] == "at_risk"


async def test_erasure_and_joins_delete_the_customer(live: Harness) -> None:
    now = datetime.now(UTC) - timedelta(hours=1)
    for n, customer in enumerate(("c-a", "c-b", "c-c")):
        await live.purchases(purchase(f"p{n}", customer, now, 10.0))
    # An id scored from feedback alone before profile knew whose it was.
    await live.feedback(feedback_event("f1", "hd-1", now, "feedback.received", {"score_type": "nps", "score": 2}))
    erased = CloudEvent("e1", "retain/profile", "customer.erased", "c-a", now, {"customer_id": "c-a"})
    merged = CloudEvent(
        "m1", "retain/profile", "profile.merged", "c-b", now, {"survivor_id": "c-b", "merged_id": "c-c"}
    )
    aliased = CloudEvent(
        "a1", "retain/profile", "profile.aliased", "c-b", now, {"customer_id": "c-b", "alias_id": "hd-1"}
    )
    await live.profile(erased, merged, aliased)
    async with live.sessions() as session:
        left_facts = set((await session.execute(select(facts.c.customer_id))).scalars())
        left_scores = set((await session.execute(select(scores.c.customer_id))).scalars())
        assert await session.scalar(select(func.count()).select_from(facts)) == 1
    assert left_facts == left_scores == {"c-b"}


async def test_profile_and_feedback_for_a_new_customer_do_not_overwrite_each_other(live: Harness) -> None:
    """The two consumers run concurrently; the second waits for the first instead of losing its facts."""
    now = datetime.now(UTC) - timedelta(hours=1)
    nps = feedback_event("f1", "c-new", now, "feedback.received", {"score_type": "nps", "score": 2})
    async with live.sessions() as first, first.begin():
        await live.consumers.handle_purchases(HandlerContext(first, live.outbox), [purchase("p1", "c-new", now, 700.0)])
        second = asyncio.create_task(live.feedback(nps))
        await asyncio.sleep(0.3)
        assert not second.done()  # blocked on the first transaction's lock of the customer
    await second
    score = await live.score("c-new")
    assert score is not None and score["total_spend"] == 700.0 and score["tier"] == "medium"
    assert [r["code"] for r in score["reasons"]] == ["detractor_nps"]
