"""A customer who reaches the top tier gets exactly one `threshold.crossed` into it, whatever the batching and arrival
order of the events that took them there: also when their very first score is already the top tier (real
PostgreSQL, handlers as the consumer loop calls them)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.common.envelope import CloudEvent
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, harness, profile_updated, purchase
from tests.scoring.integration.test_order_independence import deliver_in_batches

_people = itertools.count()


@pytest.fixture
async def live(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


def history(person: str, now: datetime) -> list[CloudEvent]:
    """Spend 120.5, then 1020.5 (over the small base's high mark), then 1520.5; and a profile document."""
    return [
        purchase(f"{person}-p1", person, now - timedelta(hours=3), 120.5),
        purchase(f"{person}-p2", person, now - timedelta(hours=2), 900.0),
        purchase(f"{person}-p3", person, now - timedelta(hours=1), 500.0),
        profile_updated(f"{person}-u1", person, now - timedelta(hours=1), version=3, open_tickets=0),
    ]


async def crossings_into_high(h: Harness, person: str) -> list[tuple[str, str | None, str]]:
    return [
        (data["kind"], data["old"], data["new"])
        for kind, subject, data in await h.emitted()
        if kind == "threshold.crossed" and subject == person and data["kind"] == "tier_up" and data["new"] == "high"
    ]


async def test_a_first_score_in_the_top_tier_crosses_into_it(live: Harness) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    await live.purchases(purchase("big", "c-first-high", now, 1500.0))
    score = await live.score("c-first-high")
    assert score is not None and score["tier"] == "high"
    assert await crossings_into_high(live, "c-first-high") == [("tier_up", None, "high")]


async def test_a_first_score_in_the_lowest_tier_crosses_nothing(live: Harness) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    await live.purchases(purchase("small", "c-first-low", now, 20.0))
    assert [kind for kind, _, _ in await live.emitted()] == ["score.changed"]


async def test_exactly_one_crossing_into_the_top_tier_whatever_the_batching(live: Harness) -> None:
    loop = asyncio.get_running_loop()
    now = datetime.now(UTC) - timedelta(minutes=1)

    async def run(order: list[int], duplicates: list[int], batch: int) -> tuple[list[tuple[str, str | None, str]], str]:
        person = f"c-once-{next(_people)}"
        events = history(person, now)
        await deliver_in_batches(live, [events[i] for i in order] + [events[i] for i in duplicates], batch)
        score = await live.score(person)
        assert score is not None
        return await crossings_into_high(live, person), score["tier"]

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        order=st.permutations(list(range(4))),
        duplicates=st.lists(st.integers(0, 3), max_size=3),
        batch=st.integers(1, 4),
    )
    def once(order: list[int], duplicates: list[int], batch: int) -> None:
        crossings, tier = asyncio.run_coroutine_threadsafe(run(order, duplicates, batch), loop).result(60)
        assert tier == "high"
        assert len(crossings) == 1, (order, duplicates, batch, crossings)

    await asyncio.to_thread(once)
