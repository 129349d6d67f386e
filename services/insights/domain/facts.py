"""What insights keeps of each consumed event, read from the event's data (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.insights.domain.periods import GRAINS, Grain, period_start, shift, utc_day


class InvalidFact(ValueError):
    """An event whose data cannot be counted (names the field)."""


@dataclass(frozen=True, slots=True)
class Purchase:
    order_id: str
    customer_id: str
    at: datetime
    amount: Decimal
    event_id: str

    @property
    def day(self) -> date:
        return utc_day(self.at)

    def supersedes(self, other_at: datetime, other_event_id: str) -> bool:
        """A repeated order replaces the stored one when it is newer (event time, then event id): the same
        winner whatever the arrival order."""
        return (self.at, self.event_id) > (other_at, other_event_id)


@dataclass(frozen=True, slots=True)
class Score:
    customer_id: str
    at: datetime
    event_id: str
    tier: str | None
    clv: float | None


@dataclass(frozen=True, slots=True)
class SurveyScore:
    event_id: str
    customer_id: str
    at: datetime
    kind: str  # "nps" or "csat"
    score: int


def purchase_of(event_id: str, customer_id: str, at: datetime, data: Mapping[str, Any]) -> Purchase:
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidFact("data.order_id: missing")
    try:
        amount = Decimal(str(data.get("amount")))
    except InvalidOperation as exc:
        raise InvalidFact("data.amount: not a number") from exc
    if not amount.is_finite():
        raise InvalidFact("data.amount: not a number")
    return Purchase(order_id, customer_id, at, amount, event_id)


def score_of(event_id: str, customer_id: str, at: datetime, data: Mapping[str, Any]) -> Score:
    tier = data.get("tier")
    clv = data.get("clv")
    return Score(
        customer_id,
        at,
        event_id,
        tier if isinstance(tier, str) else None,
        float(clv) if isinstance(clv, int | float) and not isinstance(clv, bool) else None,
    )


def survey_score_of(event_id: str, customer_id: str, at: datetime, data: Mapping[str, Any]) -> SurveyScore | None:
    """NPS and CSAT answers; other feedback (complaints) is not a score and gives None."""
    kind = data.get("score_type")
    if kind not in ("nps", "csat"):
        return None
    score = data.get("score")
    if not isinstance(score, int) or isinstance(score, bool):
        raise InvalidFact("data.score: not an integer")
    low, high = (0, 10) if kind == "nps" else (1, 5)
    if not low <= score <= high:
        raise InvalidFact(f"data.score: {kind} must be {low}-{high}")
    return SurveyScore(event_id, customer_id, at, kind, score)


DirtyPeriod = tuple[Grain, date]


def periods_touched(days: Iterable[date], *, since: date) -> set[DirtyPeriod]:
    """Periods whose figures depend on a customer's purchase days from `since` on.

    A day counts in its own period (active, new, revenue, repurchase gap) and in the next one (S, retained).
    Every day of the customer from the earliest changed one on is passed: a day added before others changes the
    gap of the day after it, and an earlier first purchase changes N and the cohort of all later periods.
    """
    touched: set[DirtyPeriod] = set()
    for day in days:
        if day < since:
            continue
        for grain in GRAINS:
            start = period_start(day, grain)
            touched.add((grain, start))
            touched.add((grain, shift(start, grain, 1)))
    return touched


def periods_from(first: date, last: date) -> set[DirtyPeriod]:
    """Every period of every grain from the one holding `first` to the one holding `last`."""
    touched: set[DirtyPeriod] = set()
    for grain in GRAINS:
        start, final = period_start(first, grain), period_start(last, grain)
        while start <= final:
            touched.add((grain, start))
            start = shift(start, grain, 1)
    return touched
