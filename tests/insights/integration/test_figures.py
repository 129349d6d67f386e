"""Each KPI and the cohort table against a hand-computed example: new, returning, reactivated and lost customers.

2024, amounts in dollars:
    a: Jan 5 (10), Jan 20 (20), Feb 10 (30)     new in Jan, returning in Feb, lost in Mar
    b: Jan 10 (40)                              new in Jan, lost in Feb
    c: Feb 3 (50), Mar 3 (60)                   new in Feb, returning in Mar
    d: Jan 15 (70), Mar 20 (80)                 new in Jan, away in Feb, reactivated in Mar
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text

from services.insights.domain.periods import Grain
from services.insights.handlers import consume
from tests.conftest import Isolation
from tests.insights.integration.harness import Harness, answered, erased, harness, purchase, scored


def at(month: int, day: int, hour: int = 12, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


BASE = [
    purchase("a1", "a", at(1, 5), 10),
    purchase("a2", "a", at(1, 20), 20),
    purchase("a3", "a", at(2, 10), 30),
    purchase("b1", "b", at(1, 10), 40),
    purchase("c1", "c", at(2, 3), 50),
    purchase("c2", "c", at(3, 3), 60),
    purchase("d1", "d", at(1, 15), 70),
    purchase("d2", "d", at(3, 20), 80),
]


@pytest.fixture
async def insights(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


async def months(h: Harness) -> dict[str, dict[str, Any]]:
    return await h.kpis("month", "2024-01-01")


async def test_each_kpi_on_the_hand_computed_example(insights: Harness) -> None:
    # Arrival order is not time order: c's purchases come first, d's last.
    await insights.purchases(*BASE[4:6])
    await insights.purchases(*BASE[:4])
    await insights.purchases(*BASE[6:])
    rows = await months(insights)
    assert list(rows) == ["2024-01", "2024-02", "2024-03"]  # as of Mar 20: April has not begun
    jan, feb, mar = rows["2024-01"], rows["2024-02"], rows["2024-03"]

    assert (jan["active_start"], jan["active_customers"], jan["new_customers"]) == (0, 3, 3)
    assert jan["retention_rate"] is None and jan["churn_rate"] is None  # no one to retain
    assert jan["repeat_purchase_rate"] == 0
    assert (jan["repurchase_cycle_mean_days"], jan["repurchase_cycle_median_days"]) == (15, 15)  # a: Jan 5 -> 20
    assert (jan["revenue"], jan["revenue_new"], jan["revenue_returning"]) == (140, 140, 0)
    assert jan["complete"] is True

    # Feb: S = {a, b, d}, E = {a, c}, N = {c}, both = {a}.
    assert (feb["active_start"], feb["active_customers"], feb["new_customers"]) == (3, 2, 1)
    assert feb["retained_customers"] == 1
    assert feb["retention_rate"] == pytest.approx(1 / 3)
    assert feb["period_over_period_retention"] == pytest.approx(1 / 3)
    assert feb["churn_rate"] == pytest.approx(2 / 3)
    assert feb["repeat_purchase_rate"] == pytest.approx(1 / 2)
    assert (feb["repurchase_cycle_mean_days"], feb["repurchase_cycle_median_days"]) == (21, 21)  # a: Jan 20 -> Feb 10
    assert (feb["revenue"], feb["revenue_new"], feb["revenue_returning"]) == (80, 50, 30)

    # Mar: S = {a, c}, E = {c, d}, N = {}, both = {c}; d is reactivated, so (E - N) / S counts them and
    # period-over-period retention does not.
    assert (mar["active_start"], mar["active_customers"], mar["new_customers"]) == (2, 2, 0)
    assert mar["retention_rate"] == pytest.approx(1.0)
    assert mar["period_over_period_retention"] == pytest.approx(0.5)
    assert mar["churn_rate"] == pytest.approx(0.5)
    assert mar["repeat_purchase_rate"] == pytest.approx(1.0)
    # c: Feb 3 -> Mar 3 (29 days in 2024), d: Jan 15 -> Mar 20 (65 days).
    assert (mar["repurchase_cycle_mean_days"], mar["repurchase_cycle_median_days"]) == (47, 47)
    assert (mar["revenue"], mar["revenue_new"], mar["revenue_returning"]) == (140, 0, 140)
    assert mar["complete"] is False


async def test_tiers_clv_nps_and_csat_of_a_period(insights: Harness) -> None:
    await insights.purchases(*BASE)
    await insights.deliver(
        consume.on_scores,
        scored("s1", "a", at(1, 25), "high", 100.0),
        scored("s2", "c", at(2, 5), "medium", 50.0),
        scored("s3", "c", at(3, 1, hour=10), "high", 90.0),  # after February ended: counts from March on
    )
    await insights.deliver(
        consume.on_feedback,
        *(answered(f"n{n}", "a", at(2, 11), "nps", score) for n, score in enumerate((10, 9, 7, 3))),
        *(answered(f"c{n}", "c", at(2, 12), "csat", score) for n, score in enumerate((5, 4, 2))),
        answered("x", "c", at(3, 4), "complaint", 1),
    )
    rows = await months(insights)
    feb, mar = rows["2024-02"], rows["2024-03"]
    assert feb["active_by_tier"] == {"high": 1, "medium": 1}
    assert feb["clv_mean"] == pytest.approx(75)
    assert feb["clv_deciles"] == pytest.approx([55, 60, 65, 70, 75, 80, 85, 90, 95])
    assert feb["nps"] == pytest.approx(25)  # 2 promoters, 1 detractor of 4
    assert feb["csat"] == pytest.approx(200 / 3)  # 2 satisfied of 3
    assert (feb["nps_responses"], feb["csat_responses"]) == (4, 3)
    assert mar["active_by_tier"] == {"high": 1, "unscored": 1}  # d was never scored
    assert mar["clv_mean"] == pytest.approx(90) and mar["clv_deciles"] == pytest.approx([90] * 9)
    assert mar["nps"] is None and mar["csat"] is None


async def test_a_late_purchase_corrects_its_own_period_and_the_next(insights: Harness) -> None:
    await insights.purchases(*BASE)
    before = await months(insights)
    await insights.purchases(purchase("b2", "b", at(2, 20), 15))  # b was not lost after all
    after = await months(insights)
    assert after["2024-01"] == before["2024-01"]
    feb, mar = after["2024-02"], after["2024-03"]
    assert (feb["active_customers"], feb["retained_customers"], feb["new_customers"]) == (3, 2, 1)
    assert feb["retention_rate"] == pytest.approx(2 / 3)
    assert feb["revenue_returning"] == 45
    assert (feb["repurchase_cycle_mean_days"], feb["repurchase_cycle_median_days"]) == (31, 31)  # 21 and 41
    assert mar["active_start"] == 3 and mar["retention_rate"] == pytest.approx(2 / 3)


async def test_an_earlier_first_purchase_moves_the_customer_out_of_new_and_into_an_older_cohort(
    insights: Harness,
) -> None:
    await insights.purchases(*BASE)
    await insights.purchases(purchase("c0", "c", at(12, 28, year=2023), 5))
    feb = (await months(insights))["2024-02"]
    assert (feb["new_customers"], feb["repeat_purchase_rate"]) == (0, 1.0)
    assert feb["revenue_new"] == 0
    # a: Jan 20 -> Feb 10 = 21 days; c: Dec 28 -> Feb 3 = 37 days.
    assert (feb["repurchase_cycle_mean_days"], feb["repurchase_cycle_median_days"]) == (29, 29)
    cohorts = await insights.figures.cohort_rows(Grain.MONTH, date(2023, 12, 1), date(2024, 2, 1))
    sizes = {row["cohort"]: row["customers"] for row in cohorts["cohorts"]}
    assert sizes == {"2023-12": 1, "2024-01": 3, "2024-02": 0}


async def test_a_repeated_order_replaces_the_stored_one_and_moves_its_period(insights: Harness) -> None:
    await insights.purchases(*BASE)
    # The same order a3, recorded again later with another day: the newer record wins, in any arrival order.
    await insights.purchases(purchase("a3-fix", "a", at(3, 10), 35, order_id="o-a3"))
    rows = await months(insights)
    assert rows["2024-02"]["active_customers"] == 1 and rows["2024-02"]["revenue"] == 50
    assert rows["2024-03"]["active_customers"] == 3 and rows["2024-03"]["revenue"] == 175
    await insights.purchases(BASE[2])  # the older record arriving again changes nothing
    assert await months(insights) == rows


async def test_a_duplicate_changes_nothing(insights: Harness) -> None:
    await insights.purchases(*BASE)
    await insights.figures.refresh_dirty()
    rows = await months(insights)
    marks = "SELECT grain, period_start, mark FROM insights.dirty_periods ORDER BY 1, 2"
    async with insights.sessions() as session:
        pending = (await session.execute(text(marks))).all()  # Q2, April and the weeks after: not begun yet
    await insights.purchases(*BASE)
    await insights.purchases(BASE[0], BASE[0])
    async with insights.sessions() as session:
        assert (await session.execute(text(marks))).all() == pending  # nothing was even marked again
    assert await months(insights) == rows


async def test_erasure_removes_the_customer_from_every_figure(insights: Harness) -> None:
    await insights.purchases(*BASE)
    await insights.deliver(consume.on_scores, scored("s1", "a", at(1, 25), "high", 100.0))
    await insights.deliver(consume.on_profile_changes, erased("e1", "a", at(3, 21)))
    # A replay of a's history after the erasure is dropped.
    await insights.purchases(*BASE[:3])
    rows = await months(insights)
    jan, feb = rows["2024-01"], rows["2024-02"]
    assert (jan["active_customers"], jan["revenue"], jan["repurchases"]) == (2, 110, 0)
    assert jan["active_by_tier"] == {"unscored": 2}
    assert (feb["active_start"], feb["active_customers"], feb["retained_customers"]) == (2, 1, 0)
    async with insights.sessions() as session:
        left = await session.scalar(text("SELECT count(*) FROM insights.purchases WHERE customer_id = 'a'"))
    assert left == 0


async def test_cohort_shares_and_revenue_per_customer(insights: Harness) -> None:
    await insights.purchases(*BASE)
    result = await insights.figures.cohort_rows(Grain.MONTH, date(2024, 1, 1), date(2024, 3, 1))
    cohorts = {row["cohort"]: row for row in result["cohorts"]}
    jan = cohorts["2024-01"]
    assert jan["customers"] == 3
    assert [p["active"] for p in jan["periods"]] == [3, 1, 1]  # k=1: a; k=2: d
    assert [p["share_active"] for p in jan["periods"]] == pytest.approx([1, 1 / 3, 1 / 3])
    assert [p["revenue_per_customer"] for p in jan["periods"]] == pytest.approx([140 / 3, 10, 80 / 3])
    assert jan["periods"][-1]["cumulative_revenue_per_customer"] == pytest.approx(250 / 3)
    feb = cohorts["2024-02"]
    assert (feb["customers"], [p["share_active"] for p in feb["periods"]]) == (1, [1.0, 1.0])
    assert cohorts["2024-03"]["customers"] == 0


async def test_weeks_and_quarters(insights: Harness) -> None:
    await insights.purchases(*BASE)
    quarters = await insights.kpis("quarter", "2024-01-01")
    assert list(quarters) == ["2024-Q1"]
    q1 = quarters["2024-Q1"]
    assert (q1["active_customers"], q1["new_customers"], q1["revenue"]) == (4, 4, 360)
    weeks = await insights.kpis("week", "2024-01-01", "2024-01-21")
    # Mon Jan 1 - Sun Jan 7: a; Jan 8-14: b; Jan 15-21: d (Jan 15) and a (Jan 20).
    assert [weeks[w]["active_customers"] for w in ("2024-W01", "2024-W02", "2024-W03")] == [1, 1, 2]
    assert weeks["2024-W03"]["active_start"] == 1 and weeks["2024-W03"]["retained_customers"] == 0
