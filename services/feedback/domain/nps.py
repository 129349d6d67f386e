"""NPS and CSAT arithmetic and grouped aggregation.

NPS = % promoters (9-10) - % detractors (0-6), on 0..10 answers.
CSAT = % of answers scoring 4-5, on 1..5 answers; the mean is reported too
because a bare percentage hides how unhappy the unhappy ones are.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from services.feedback.domain.errors import InvalidValue

NpsCategory = Literal["promoter", "passive", "detractor"]
Period = Literal["day", "week", "month"]

NPS_MIN, NPS_MAX = 0, 10
CSAT_MIN, CSAT_MAX = 1, 5
PROMOTER_MIN = 9
DETRACTOR_MAX = 6
CSAT_SATISFIED_MIN = 4

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def _validate_int(value: object, field: str, low: int, high: int) -> int:
    # bool is an int subclass; True as a score is a caller bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, f"must be an integer {low}-{high}, got {value!r}")
    if not low <= value <= high:
        raise InvalidValue(field, f"must be between {low} and {high}, got {value}")
    return value


def validate_nps_score(value: object, field: str = "nps") -> int:
    return _validate_int(value, field, NPS_MIN, NPS_MAX)


def validate_csat_score(value: object, field: str = "csat") -> int:
    return _validate_int(value, field, CSAT_MIN, CSAT_MAX)


def classify_nps(score: int) -> NpsCategory:
    validate_nps_score(score)
    if score >= PROMOTER_MIN:
        return "promoter"
    if score <= DETRACTOR_MAX:
        return "detractor"
    return "passive"


@dataclass(frozen=True, slots=True)
class NpsResult:
    total: int
    promoters: int
    passives: int
    detractors: int
    # None rather than 0.0 when there are no answers: "no data" is not "neutral".
    nps: float | None


@dataclass(frozen=True, slots=True)
class CsatResult:
    total: int
    satisfied: int
    csat: float | None  # percent of answers scoring 4-5
    mean: float | None


def compute_nps(scores: Iterable[int], field: str = "nps") -> NpsResult:
    promoters = passives = detractors = 0
    for raw in scores:
        score = validate_nps_score(raw, field)
        if score >= PROMOTER_MIN:
            promoters += 1
        elif score <= DETRACTOR_MAX:
            detractors += 1
        else:
            passives += 1
    total = promoters + passives + detractors
    nps = None if total == 0 else round(100.0 * (promoters - detractors) / total, 2)
    return NpsResult(total, promoters, passives, detractors, nps)


def compute_csat(scores: Iterable[int], field: str = "csat") -> CsatResult:
    total = satisfied = running_sum = 0
    for raw in scores:
        score = validate_csat_score(raw, field)
        total += 1
        running_sum += score
        if score >= CSAT_SATISFIED_MIN:
            satisfied += 1
    if total == 0:
        return CsatResult(0, 0, None, None)
    return CsatResult(
        total,
        satisfied,
        round(100.0 * satisfied / total, 2),
        round(running_sum / total, 4),
    )


def period_bucket(at: datetime, period: Period) -> str:
    """Stable bucket label: ``2026-11-20``, ``2026-W47`` (ISO week), ``2026-11``.

    Labels sort chronologically as strings, which keeps report ordering trivial.
    """
    if period == "day":
        return at.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if period == "month":
        return at.strftime("%Y-%m")
    raise InvalidValue("period", f"must be day, week or month, got {period!r}")


def period_start(at: datetime, period: Period) -> datetime:
    """First instant of the bucket containing ``at`` (keeps ``at``'s tzinfo)."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise InvalidValue("period", f"must be day, week or month, got {period!r}")


def _group(items: Iterable[T], key: Callable[[T], K | None], score: Callable[[T], int | None]) -> dict[K, list[int]]:
    groups: dict[K, list[int]] = {}
    for item in items:
        value = score(item)
        group = key(item)
        # Items without a score of this kind (a CSAT-only answer in an NPS report)
        # or without a group key are skipped, not counted as zeros.
        if value is None or group is None:
            continue
        groups.setdefault(group, []).append(value)
    return groups


def nps_by(items: Iterable[T], key: Callable[[T], K | None], score: Callable[[T], int | None]) -> dict[K, NpsResult]:
    return {k: compute_nps(v) for k, v in _group(items, key, score).items()}


def csat_by(items: Iterable[T], key: Callable[[T], K | None], score: Callable[[T], int | None]) -> dict[K, CsatResult]:
    return {k: compute_csat(v) for k, v in _group(items, key, score).items()}


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """The minimum of a survey response the reports need."""

    customer_id: str
    responded_at: datetime
    nps: int | None = None
    csat: int | None = None
    tier: str | None = None
    segment: str | None = None

    def __post_init__(self) -> None:
        if self.nps is None and self.csat is None:
            raise InvalidValue("nps", "a response needs an nps or a csat score")
        if self.nps is not None:
            validate_nps_score(self.nps)
        if self.csat is not None:
            validate_csat_score(self.csat)


GroupBy = Literal["tier", "segment", "day", "week", "month", "all"]


def _key_for(group_by: GroupBy) -> Callable[[SurveyAnswer], str | None]:
    if group_by == "tier":
        return lambda a: a.tier
    if group_by == "segment":
        return lambda a: a.segment
    if group_by in ("day", "week", "month"):
        period: Period = group_by
        return lambda a: period_bucket(a.responded_at, period)
    if group_by == "all":
        return lambda a: "all"
    raise InvalidValue("group_by", f"unknown grouping {group_by!r}")


def nps_report(answers: Iterable[SurveyAnswer], group_by: GroupBy) -> dict[str, NpsResult]:
    """NPS per group, keys sorted so period buckets come out in time order."""
    result = nps_by(answers, _key_for(group_by), lambda a: a.nps)
    return dict(sorted(result.items()))


def csat_report(answers: Iterable[SurveyAnswer], group_by: GroupBy) -> dict[str, CsatResult]:
    result = csat_by(answers, _key_for(group_by), lambda a: a.csat)
    return dict(sorted(result.items()))
