"""What insights keeps of each consumed event, read from the event's data (pure: no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from libs.common.contracts import FeedbackReceived, ProfileUpdated, ScoreChanged
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
    coupon_code: str | None = None

    @property
    def day(self) -> date:
        return utc_day(self.at)

    def supersedes(self, other_at: datetime, other_event_id: str) -> bool:
        """A repeated order replaces the stored one when it is newer (event time, then event id): the same
        winner whatever the arrival order."""
        return (self.at, self.event_id) > (other_at, other_event_id)


@dataclass(frozen=True, slots=True)
class Refund:
    """Money given back on an order; netted off the order in the order's own period (as scoring nets it off the
    customer's spend), so a return corrects the revenue of the month it was bought in."""

    event_id: str
    customer_id: str
    order_id: str
    at: datetime
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Score:
    customer_id: str
    at: datetime
    event_id: str
    tier: str | None
    clv: float | None
    stage: str | None = None
    # The churn reasons of the score (code, message, contribution), for the churned-customers report.
    reasons: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Traits:
    """What the churned-customers report compares of a customer, from their latest `profile.updated`."""

    customer_id: str
    version: int
    favourite_category: str | None
    region: str | None
    channel: str | None
    open_tickets: int
    last_nps: int | None
    last_login_at: datetime | None
    last_purchase_at: datetime | None


@dataclass(frozen=True, slots=True)
class SurveyScore:
    event_id: str
    customer_id: str
    at: datetime
    kind: str  # "nps" or "csat"
    score: int


def purchase_of(event_id: str, customer_id: str, at: datetime, data: Mapping[str, Any]) -> Purchase:
    order_id, amount = _order_and_amount(data)
    coupon = data.get("coupon_code")
    return Purchase(order_id, customer_id, at, amount, event_id, coupon if isinstance(coupon, str) else None)


def refund_of(event_id: str, customer_id: str, at: datetime, data: Mapping[str, Any]) -> Refund | None:
    """None for a refund of nothing (amount 0), which changes no figure."""
    order_id, amount = _order_and_amount(data)
    if amount < 0:
        raise InvalidFact("data.amount: a refund cannot be negative")
    return Refund(event_id, customer_id, order_id, at, amount) if amount > 0 else None


def _order_and_amount(data: Mapping[str, Any]) -> tuple[str, Decimal]:
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise InvalidFact("data.order_id: missing")
    try:
        amount = Decimal(str(data.get("amount")))
    except InvalidOperation as exc:
        raise InvalidFact("data.amount: not a number") from exc
    if not amount.is_finite():
        raise InvalidFact("data.amount: not a number")
    return order_id, amount


def score_of(event_id: str, customer_id: str, at: datetime, score: ScoreChanged) -> Score:
    return Score(
        customer_id,
        at,
        event_id,
        score.tier,
        _number(score.clv),
        score.stage,
        tuple({"code": r.code, "message": r.message, "contribution": r.contribution} for r in score.reasons),
    )


def _number(value: Decimal | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def traits_of(update: ProfileUpdated) -> Traits | None:
    """The traits in a `profile.updated`'s metrics; None when it names no customer."""
    metrics = update.metrics
    if not metrics.customer_id:
        return None
    return Traits(
        customer_id=metrics.customer_id,
        version=update.version,
        favourite_category=metrics.favourite_category or None,
        region=metrics.region or None,
        channel=main_channel(metrics.logins_90d_by_channel),
        open_tickets=max(metrics.open_tickets, 0),
        last_nps=metrics.last_nps,
        last_login_at=metrics.last_login_at,
        last_purchase_at=metrics.last_purchase_at,
    )


def main_channel(logins_by_channel: Mapping[str, Any]) -> str | None:
    """The channel a customer logged in on most (ties: the first name), None without logins."""
    counts = [(-_count(n), str(c)) for c, n in logins_by_channel.items() if _count(n) > 0]
    return min(counts)[1] if counts else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _count(value: Any) -> int:
    number = _int(value)
    return number if number is not None and number > 0 else 0


def survey_score_of(event_id: str, customer_id: str, at: datetime, feedback: FeedbackReceived) -> SurveyScore | None:
    """NPS and CSAT answers; other feedback (complaints) is not a score and gives None."""
    kind = feedback.score_type
    if kind == "complaint":
        return None
    score = feedback.score
    if score is None:
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
