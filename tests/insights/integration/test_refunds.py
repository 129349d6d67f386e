"""Refunds net off their order in the order's own period: revenue, cohort revenue, activity and purchase days.

2024, amounts in dollars (the example of test_figures):
    a: Jan 5 (10), Jan 20 (20), Feb 10 (30)
    b: Jan 10 (40)
    c: Feb 3 (50), Mar 3 (60)
    d: Jan 15 (70), Mar 20 (80)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from services.insights.domain.periods import Grain
from services.insights.handlers import consume
from tests.conftest import Isolation
from tests.insights.integration.harness import Harness, erased, harness, refund
from tests.insights.integration.test_figures import BASE, at


@pytest.fixture
async def insights(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


async def months(h: Harness) -> dict[str, dict[str, Any]]:
    return await h.kpis("month", "2024-01-01")


async def test_a_partial_refund_lowers_the_revenue_of_the_order_period(insights: Harness) -> None:
    await insights.purchases(*BASE)
    # 15 of b's 40 given back in March: January's revenue (new customers' revenue) loses it, March's does not.
    await insights.purchases(refund("r1", "b", at(3, 1), "15", order_id="o-b1"))
    rows = await months(insights)
    jan, mar = rows["2024-01"], rows["2024-03"]
    assert (jan["revenue"], jan["revenue_new"], jan["active_customers"]) == (125, 125, 3)
    assert mar["revenue"] == 140
    cohorts = await insights.figures.cohort_rows(Grain.MONTH, date(2024, 1, 1), date(2024, 1, 1))
    assert [p["revenue"] for p in cohorts["cohorts"][0]["periods"]] == [125, 30, 80]


async def test_an_order_refunded_in_full_is_no_purchase(insights: Harness) -> None:
    await insights.purchases(*BASE)
    # d's January order returned in two refunds: d's first purchase is now March, so d is new there, not reactivated.
    await insights.purchases(
        refund("r1", "d", at(1, 16), "50", order_id="o-d1"), refund("r2", "d", at(1, 17), "20", order_id="o-d1")
    )
    rows = await months(insights)
    jan, feb, mar = rows["2024-01"], rows["2024-02"], rows["2024-03"]
    assert (jan["active_customers"], jan["new_customers"], jan["revenue"]) == (2, 2, 70)
    assert feb["active_start"] == 2
    assert (mar["active_customers"], mar["new_customers"], mar["revenue_new"]) == (2, 1, 80)
    assert mar["retention_rate"] == pytest.approx((2 - 1) / 2)  # a and c active in Feb; c returns
    cohorts = await insights.figures.cohort_rows(Grain.MONTH, date(2024, 1, 1), date(2024, 3, 1))
    assert [row["customers"] for row in cohorts["cohorts"]] == [2, 1, 1]


async def test_a_refund_before_its_order_and_redelivered_counts_once(insights: Harness) -> None:
    early = refund("r1", "a", at(1, 21), "5", order_id="o-a2")
    await insights.purchases(early)
    await insights.purchases(*BASE)
    await insights.purchases(early)  # a redelivery the inbox missed: the refund is kept once per event id
    jan = (await months(insights))["2024-01"]
    assert jan["revenue"] == 135


async def test_erasure_removes_the_refunds_too(insights: Harness) -> None:
    await insights.purchases(*BASE, refund("r1", "a", at(2, 11), "30", order_id="o-a3"))
    assert (await months(insights))["2024-02"]["active_customers"] == 1  # a's February order was returned
    await insights.deliver(consume.on_profile_changes, erased("e1", "a", at(3, 21)))
    async with insights.sessions() as session:
        left = await session.scalar(text("SELECT count(*) FROM insights.refunds"))
    assert left == 0
    feb = (await months(insights))["2024-02"]
    assert (feb["active_customers"], feb["revenue"]) == (1, 50)
