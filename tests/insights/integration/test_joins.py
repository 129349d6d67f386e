"""Ids profile joined (`profile.merged`, `profile.aliased`) count as one customer, whatever the arrival order of
the joins and the purchases (hypothesis over one database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from libs.common.envelope import CloudEvent
from services.insights.domain.periods import Grain
from services.insights.handlers import consume
from tests.conftest import Isolation
from tests.insights.integration.harness import Harness, harness, purchase


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 9, tzinfo=UTC)


# One person under three ids (web-1 in January, shop-1 in February, app-9 in March), and another customer.
PURCHASES = [
    purchase("p1", "web-1", at(1, 5), 10),
    purchase("p2", "shop-1", at(2, 7), 20),
    purchase("p3", "app-9", at(3, 9), 30),
    purchase("p4", "other", at(1, 12), 5),
    purchase("p5", "other", at(3, 1), 6),
]
JOINS = [
    CloudEvent(
        id="j1",
        source="retain/profile",
        type="profile.merged",
        subject="shop-1",
        time=at(2, 8),
        data={"survivor_id": "shop-1", "merged_id": "web-1"},
    ),
    CloudEvent(
        id="j2",
        source="retain/profile",
        type="profile.aliased",
        subject="shop-1",
        time=at(3, 10),
        data={"customer_id": "shop-1", "alias_id": "app-9"},
    ),
]
TABLES = ", ".join(
    f"insights.{t}"
    for t in (
        "purchases",
        "customer_days",
        "customers",
        "dirty_periods",
        "period_figures",
        "cohort_cells",
        "clock",
        "customer_aliases",
    )
)


@pytest.fixture
async def h(isolated: Isolation) -> AsyncIterator[Harness]:
    async for value in harness(isolated):
        yield value


async def figures(h: Harness) -> dict[str, Any]:
    await h.figures.refresh_dirty()
    cohorts = await h.figures.cohort_rows(Grain.MONTH, date(2024, 1, 1), None)
    return {"months": await h.kpis("month", "2024-01-01"), "cohorts": cohorts["cohorts"]}


async def reset(h: Harness) -> None:
    async with h.sessions() as session, session.begin():
        await session.execute(text(f"TRUNCATE {TABLES}"))


async def deliver(h: Harness, event: CloudEvent) -> None:
    handler = consume.on_purchases if event.type == "purchase" else consume.on_profile_changes
    await h.deliver(handler, event)


async def test_joined_ids_are_one_customer_in_every_order(h: Harness) -> None:
    # The expected figures: every purchase posted under the one id from the start.
    await h.purchases(*[replace(p, subject="shop-1") if p.subject != "other" else p for p in PURCHASES])
    expected = await figures(h)
    months = expected["months"]
    assert [months[m]["active_customers"] for m in ("2024-01", "2024-02", "2024-03")] == [2, 1, 2]
    assert [months[m]["new_customers"] for m in ("2024-01", "2024-02", "2024-03")] == [2, 0, 0]
    assert months["2024-02"]["retained_customers"] == 1 and months["2024-03"]["retained_customers"] == 1

    # Purchases first, then the joins: before them the person counts three times (three new customers).
    await reset(h)
    await h.purchases(*PURCHASES)
    before = (await figures(h))["months"]
    assert [before[m]["new_customers"] for m in ("2024-01", "2024-02", "2024-03")] == [2, 1, 1]
    for join in JOINS:
        await deliver(h, join)
    assert await figures(h) == expected
    loop = asyncio.get_running_loop()

    async def run(order: list[int], midway: int) -> dict[str, Any]:
        await reset(h)
        events = [*PURCHASES, *JOINS]
        for n, i in enumerate(order):
            await deliver(h, events[i])
            if n == midway:
                await h.figures.refresh_dirty()  # a recompute on partial data; later ones correct it
        return await figures(h)

    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
    @given(order=st.permutations(list(range(len(PURCHASES) + len(JOINS)))), midway=st.integers(0, 6))
    def same_figures(order: list[int], midway: int) -> None:
        got = asyncio.run_coroutine_threadsafe(run(order, midway), loop).result(120)
        assert got == expected, order

    await asyncio.to_thread(same_figures)


async def test_a_join_of_an_id_with_nothing_counted_changes_nothing(h: Harness) -> None:
    await h.purchases(*PURCHASES[3:])
    expected = await figures(h)
    await deliver(h, replace(JOINS[0], id="j-empty", data={"survivor_id": "other", "merged_id": "never-seen"}))
    assert await figures(h) == expected
