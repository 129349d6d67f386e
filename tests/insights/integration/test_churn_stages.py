"""Who became churned in a week and who is in the active base, from stage runs, equal the definition computed on
the raw scores (last score before the start and before the end) whatever the arrival order, batching or
redelivery of the scores (hypothesis over one database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from libs.common.envelope import CloudEvent
from services.insights.adapters import store
from services.insights.domain.churn import BASE_STAGES
from services.insights.domain.periods import Grain
from services.insights.handlers import consume
from services.insights.handlers.churn import ChurnReports
from tests.conftest import Isolation
from tests.derived import complete
from tests.insights.integration.harness import Harness, harness, purchase

WEEK_START = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
WEEK_END = WEEK_START + timedelta(days=7)
STAGES = ("new", "active", "at_risk", "churned", "reactivated")
# Score times on a coarse grid around the week's bounds, so that ties and scores exactly at a bound occur.
MOMENTS = [WEEK_START + timedelta(days=d) for d in (-3, -1, 0, 0, 2, 5, 7, 7, 9)]


def score(n: int, customer: str, when: datetime, stage: str, tier: str) -> CloudEvent:
    return CloudEvent(
        id=f"s{n:03}",
        source="retain/scoring",
        type="score.changed",
        subject=customer,
        time=when,
        data=complete("score.changed", {"tier": tier, "stage": stage, "clv": f"{n}.00", "reasons": []}),
    )


def expected(scores: list[CloudEvent]) -> dict[str, Any]:
    """The report's definition on the raw scores: stage at a moment is that of the last score before it."""

    def last_before(customer: str, moment: datetime) -> CloudEvent | None:
        before = [s for s in scores if s.subject == customer and s.time < moment]
        return max(before, key=lambda s: (s.time, s.id), default=None)

    churned: set[str] = set()
    base: set[str] = set()
    tiers: dict[tuple[bool, str], int] = {}
    for customer in {s.subject for s in scores}:
        end, start = last_before(customer, WEEK_END), last_before(customer, WEEK_START)
        if end is None:
            continue
        if end.data["stage"] == "churned" and (start is None or start.data["stage"] != "churned"):
            churned.add(customer)
        elif end.data["stage"] in BASE_STAGES:
            base.add(customer)
        else:
            continue
        tiers[(customer in churned, end.data["tier"])] = tiers.get((customer in churned, end.data["tier"]), 0) + 1
    last = {c: last_before(c, WEEK_END) for c in churned}
    clv = sum(float(s.data["clv"]) for s in last.values() if s is not None)
    # The report lists the values seen among the churned, with their counts in the base.
    listed = {tier for (was_churned, tier) in tiers if was_churned}
    tiers = {key: n for key, n in tiers.items() if key[1] in listed}
    return {"churned": len(churned), "base": len(base), "tiers": tiers, "clv_lost": clv}


async def reported(h: Harness) -> dict[str, Any]:
    report = await ChurnReports(h.settings, h.sessions, h.figures.outbox).report(Grain.WEEK, date(2024, 3, 4))
    tiers: dict[tuple[bool, str], int] = {}
    for row in report["traits"]:
        if row["trait"] == "tier":
            tiers[(True, row["value"])] = row["churned"]
            tiers[(False, row["value"])] = row["base"]
    async with h.sessions() as session:
        # What the announcement carries, counted without the traits, is the report's own totals.
        totals = await store.churn_totals(session, Grain.WEEK, date(2024, 3, 4))
    assert totals[:2] == (report["churned"], report["active_base"])
    assert totals[2] == pytest.approx(report["clv_lost"])
    return {
        "churned": report["churned"],
        "base": report["active_base"],
        "tiers": {key: n for key, n in tiers.items() if n},
        "clv_lost": report["clv_lost"],
    }


@pytest.fixture
async def h(isolated: Isolation) -> AsyncIterator[Harness]:
    async for value in harness(isolated):
        yield value


scores_strategy = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(MOMENTS),
        st.sampled_from(STAGES),
        st.sampled_from(["low", "high"]),
    ),
    min_size=1,
    max_size=14,
)


async def test_stage_runs_give_the_definition_in_any_arrival_order(h: Harness) -> None:
    loop = asyncio.get_running_loop()

    async def run(scores: list[CloudEvent], order: list[int], batch: int, repeats: list[int]) -> dict[str, Any]:
        async with h.sessions() as session, session.begin():
            await session.execute(
                text("TRUNCATE insights.scores, insights.stage_runs, insights.clock, insights.churn_report_counts")
            )
        await h.purchases(purchase("clock", "z", WEEK_END + timedelta(days=3), 1))  # the clock: after the week
        arrival = [scores[i] for i in order] + [scores[i % len(scores)] for i in repeats]
        for low in range(0, len(arrival), batch):
            await h.deliver(consume.on_scores, *arrival[low : low + batch])
        return await reported(h)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data(), raw=scores_strategy, batch=st.integers(1, 5))
    def same_as_definition(data: st.DataObject, raw: list[tuple[str, datetime, str, str]], batch: int) -> None:
        scores = [score(n, *fields) for n, fields in enumerate(raw)]
        order = data.draw(st.permutations(list(range(len(scores)))))
        repeats = data.draw(st.lists(st.integers(0, 20), max_size=4))
        got = asyncio.run_coroutine_threadsafe(run(scores, order, batch, repeats), loop).result(120)
        want = expected(scores)
        assert got == {**want, "clv_lost": pytest.approx(want["clv_lost"])}, (raw, order)

    await asyncio.to_thread(same_as_definition)
