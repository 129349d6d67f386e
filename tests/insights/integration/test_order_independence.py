"""The figures do not depend on arrival order, batching or redelivery of purchases, refunds and an erasure
(hypothesis over one database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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
from tests.insights.integration.harness import Harness, erased, harness, purchase, refund


def at(month: int, day: int) -> datetime:
    return datetime(2024, month, day, 9, tzinfo=UTC)


# Three customers over four months; order o-x is recorded twice (the later record moves it from February to
# March) and partly refunded, two orders fall on one day, b's January order is refunded in full in two parts (b's
# first purchase becomes March), a refund names an order that never arrives, and customer e, who bought and was
# refunded, is erased.
EVENTS: list[CloudEvent] = [
    purchase("p1", "a", at(1, 3), 10),
    purchase("p2", "a", at(1, 3), 5),
    purchase("p3", "a", at(2, 14), 7, order_id="o-x"),
    purchase("p4", "a", at(3, 2), 8, order_id="o-x"),
    purchase("p5", "b", at(1, 20), 30),
    purchase("p6", "b", at(3, 9), 12),
    purchase("p7", "c", at(2, 1), 9),
    purchase("p8", "c", at(4, 30), 11),
    purchase("p9", "b", at(4, 2), 4),
    refund("r1", "a", at(3, 5), 3, order_id="o-x"),
    refund("r2", "b", at(1, 25), 10, order_id="o-p5"),
    refund("r3", "b", at(2, 2), 20, order_id="o-p5"),
    refund("r4", "c", at(2, 5), 1, order_id="o-never"),
    purchase("p10", "e", at(2, 10), 100),
    purchase("p11", "e", at(3, 10), 50),
    refund("r5", "e", at(3, 12), 20, order_id="o-p11"),
    erased("x1", "e", at(4, 1)),
]
TABLES = "insights.purchases, insights.refunds, insights.customer_days, insights.customers, " + (
    "insights.dirty_periods, insights.period_figures, insights.cohort_cells, insights.clock, insights.erasures"
)


@pytest.fixture
async def h(isolated: Isolation) -> AsyncIterator[Harness]:
    async for value in harness(isolated):
        yield value


async def figures(h: Harness) -> dict[str, Any]:
    await h.figures.refresh_dirty()
    kpis = await h.kpis("month", "2024-01-01")
    cohorts = await h.figures.cohort_rows(Grain.MONTH, date(2024, 1, 1), None)
    quarters = await h.kpis("quarter", "2024-01-01")
    return {"months": kpis, "quarters": quarters, "cohorts": cohorts["cohorts"]}


async def deliver(h: Harness, events: list[CloudEvent]) -> None:
    """One consumer batch per run of events of the same subscription, in arrival order."""
    run: list[CloudEvent] = []
    for event in [*events, None]:
        if run and (event is None or (event.type == "customer.erased") != (run[0].type == "customer.erased")):
            handler = consume.on_profile_changes if run[0].type == "customer.erased" else consume.on_purchases
            await h.deliver(handler, *run)
            run = []
        if event is not None:
            run.append(event)


async def test_any_order_batching_and_redelivery_give_the_same_figures(h: Harness) -> None:
    await deliver(h, EVENTS)
    expected = await figures(h)
    months = expected["months"]
    # o-x counted in March only, net of its refund; b's January order was returned, so b is new in March.
    assert [months[m]["revenue"] for m in ("2024-01", "2024-02", "2024-03", "2024-04")] == [15, 9, 17, 15]
    assert [months[m]["active_customers"] for m in ("2024-01", "2024-02", "2024-03", "2024-04")] == [1, 1, 2, 2]
    assert [months[m]["new_customers"] for m in ("2024-01", "2024-02", "2024-03", "2024-04")] == [1, 1, 1, 0]
    loop = asyncio.get_running_loop()

    async def run(order: list[int], batch: int, repeats: list[int]) -> dict[str, Any]:
        async with h.sessions() as session, session.begin():
            await session.execute(text(f"TRUNCATE {TABLES}"))
        arrival = [EVENTS[i] for i in order] + [EVENTS[i] for i in repeats]
        for start in range(0, len(arrival), batch):
            await deliver(h, arrival[start : start + batch])
            if start < len(arrival) // 2 <= start + batch:
                await h.figures.refresh_dirty()  # a recompute midway sees partial data; later ones correct it
        return await figures(h)

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        order=st.permutations(list(range(len(EVENTS)))),
        batch=st.integers(1, 4),
        repeats=st.lists(st.integers(0, len(EVENTS) - 1), max_size=6),
    )
    def same_figures(order: list[int], batch: int, repeats: list[int]) -> None:
        got = asyncio.run_coroutine_threadsafe(run(order, batch, repeats), loop).result(120)
        assert got == expected, (order, batch, repeats)

    await asyncio.to_thread(same_figures)
