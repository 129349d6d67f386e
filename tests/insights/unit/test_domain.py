"""Pure parts of insights: calendar periods, KPI formulas, anomaly detection, which periods a change touches."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.contracts import FeedbackReceived
from services.insights.domain.facts import InvalidFact, periods_touched, purchase_of, refund_of, survey_score_of
from services.insights.domain.kpis import PeriodCounts, anomalies, kpis
from services.insights.domain.periods import Grain, label, period_end, period_start, periods_apart, shift


def test_period_starts_and_labels() -> None:
    day = date(2024, 2, 29)
    assert period_start(day, Grain.WEEK) == date(2024, 2, 26)  # a Monday
    assert period_start(day, Grain.MONTH) == date(2024, 2, 1)
    assert period_start(day, Grain.QUARTER) == date(2024, 1, 1)
    assert label(date(2024, 12, 30), Grain.WEEK) == "2025-W01"  # ISO weeks belong to the year of their Thursday
    assert label(date(2024, 10, 1), Grain.QUARTER) == "2024-Q4"
    assert period_end(date(2024, 12, 1), Grain.MONTH) == date(2025, 1, 1)
    assert shift(date(2024, 1, 1), Grain.QUARTER, -1) == date(2023, 10, 1)


@given(st.dates(date(1990, 1, 1), date(2100, 1, 1)), st.sampled_from(list(Grain)), st.integers(-60, 60))
def test_shifting_periods_is_consistent(day: date, grain: Grain, n: int) -> None:
    start = period_start(day, grain)
    assert start <= day < period_end(start, grain)
    moved = shift(start, grain, n)
    assert period_start(moved, grain) == moved
    assert periods_apart(start, moved, grain) == n
    assert shift(moved, grain, -n) == start


def counts(**values: object) -> PeriodCounts:
    base: dict[str, object] = {
        "active_start": 0,
        "active_end": 0,
        "new": 0,
        "retained": 0,
        "revenue": Decimal(0),
        "revenue_new": Decimal(0),
        "repurchases": 0,
        "repurchase_gap_days_sum": 0,
        "repurchase_gap_days_median": None,
    }
    return PeriodCounts(**{**base, **values})  # type: ignore[arg-type]


def test_kpi_formulas() -> None:
    figures = kpis(
        counts(
            active_start=4,
            active_end=5,
            new=2,
            retained=2,
            revenue=Decimal("100.50"),
            revenue_new=Decimal("40.25"),
            repurchases=2,
            repurchase_gap_days_sum=30,
            repurchase_gap_days_median=15.0,
            nps_responses=5,
            nps_promoters=3,
            nps_detractors=1,
            csat_responses=4,
            csat_satisfied=3,
        )
    )
    assert figures["retention_rate"] == 0.75  # (5 - 2) / 4: counts one reactivated customer
    assert figures["period_over_period_retention"] == 0.5
    assert figures["churn_rate"] == 0.5
    assert figures["repeat_purchase_rate"] == 0.6
    assert figures["repurchase_cycle_mean_days"] == 15
    assert figures["revenue_returning"] == pytest.approx(60.25)
    assert figures["nps"] == 40 and figures["csat"] == 75
    empty = kpis(counts())
    assert empty["retention_rate"] is None and empty["repeat_purchase_rate"] is None and empty["nps"] is None


def test_anomalies_against_the_mean_of_the_previous_periods() -> None:
    history = [{"revenue": 100.0}, {"revenue": 90.0}, {"revenue": 110.0}]
    [drop] = anomalies({"revenue": 85.0}, history, baseline_periods=3, threshold=0.15)
    assert (drop.kpi, drop.baseline, drop.deviation) == ("revenue", 100.0, -0.15)  # exactly 15 % is raised
    assert anomalies({"revenue": 86.0}, history, baseline_periods=3, threshold=0.15) == []
    [rise] = anomalies({"revenue": 130.0}, history, baseline_periods=3, threshold=0.15)
    assert rise.deviation == pytest.approx(0.3)
    assert anomalies({"revenue": 10.0}, history[1:], baseline_periods=3, threshold=0.15) == []  # too little history
    assert anomalies({"nps": 5.0}, [{"nps": None}, {"nps": 1.0}, {"nps": 2.0}], baseline_periods=3, threshold=0.1) == []
    assert anomalies({"churn_rate": 0.5}, [{"churn_rate": 0.0}] * 3, baseline_periods=3, threshold=0.1) == []


def test_a_change_touches_its_period_the_next_and_every_later_day() -> None:
    touched = periods_touched([date(2024, 1, 5), date(2024, 3, 9)], since=date(2024, 1, 1))
    months = sorted(start for grain, start in touched if grain is Grain.MONTH)
    assert months == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)]
    assert periods_touched([date(2023, 12, 5)], since=date(2024, 1, 1)) == set()


def test_bad_event_data_names_the_field() -> None:
    with pytest.raises(InvalidFact, match=r"data\.order_id"):
        purchase_of("e", "c", None, {"amount": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidFact, match=r"data\.amount"):
        purchase_of("e", "c", None, {"order_id": "o", "amount": "lots"})  # type: ignore[arg-type]
    with pytest.raises(InvalidFact, match=r"data\.score"):
        survey_score_of("e", "c", None, FeedbackReceived(score_type="csat", score=9, sentiment="neutral"))  # type: ignore[arg-type]
    assert survey_score_of("e", "c", None, FeedbackReceived(score_type="complaint", sentiment="neutral")) is None  # type: ignore[arg-type]
    with pytest.raises(InvalidFact, match=r"data\.amount"):
        refund_of("e", "c", None, {"order_id": "o", "amount": "-5"})  # type: ignore[arg-type]
    with pytest.raises(InvalidFact, match=r"data\.order_id"):
        refund_of("e", "c", None, {"amount": "5"})  # type: ignore[arg-type]
    assert refund_of("e", "c", None, {"order_id": "o", "amount": "0"}) is None  # type: ignore[arg-type]
    given_back = refund_of("e", "c", None, {"order_id": "o", "amount": "2.50"})  # type: ignore[arg-type]
    assert given_back is not None and given_back.amount == Decimal("2.50")
