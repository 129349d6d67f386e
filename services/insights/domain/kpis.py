"""The retention KPIs of one period, derived from the counts the store keeps for it.

A customer is active in a period when they made at least one purchase in it. S = active in the previous period,
E = active in this one, N = first purchase in this one, `retained` = active in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

# The KPIs that are single numbers, in the order the API lists them; anomalies are watched on these.
SCALAR_KPIS: tuple[str, ...] = (
    "active_customers",
    "new_customers",
    "retention_rate",
    "period_over_period_retention",
    "churn_rate",
    "repeat_purchase_rate",
    "repurchase_cycle_mean_days",
    "repurchase_cycle_median_days",
    "revenue",
    "revenue_returning",
    "revenue_new",
    "clv_mean",
    "nps",
    "csat",
)

NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6
CSAT_SATISFIED_MIN = 4


@dataclass(frozen=True)
class PeriodCounts:
    """What the store computes for one period; everything else follows from it."""

    active_start: int  # S
    active_end: int  # E
    new: int  # N
    retained: int  # active in this period and the previous one
    revenue: Decimal
    revenue_new: Decimal
    repurchases: int  # purchase days in the period that follow an earlier purchase day of the same customer
    repurchase_gap_days_sum: int
    repurchase_gap_days_median: float | None
    active_by_tier: dict[str, int] = field(default_factory=dict)
    clv_mean: float | None = None
    clv_deciles: list[float] | None = None
    nps_responses: int = 0
    nps_promoters: int = 0
    nps_detractors: int = 0
    csat_responses: int = 0
    csat_satisfied: int = 0


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else numerator / denominator


def kpis(counts: PeriodCounts) -> dict[str, object]:
    """The KPIs of one period; a ratio whose denominator is zero is None (undefined), not zero."""
    returning = counts.active_end - counts.new
    pop_retention = _ratio(counts.retained, counts.active_start)
    nps = _ratio(100 * (counts.nps_promoters - counts.nps_detractors), counts.nps_responses)
    return {
        "active_start": counts.active_start,
        "active_customers": counts.active_end,
        "new_customers": counts.new,
        "returning_customers": returning,
        "retained_customers": counts.retained,
        "retention_rate": _ratio(returning, counts.active_start),
        "period_over_period_retention": pop_retention,
        "churn_rate": None if pop_retention is None else 1 - pop_retention,
        "repeat_purchase_rate": _ratio(returning, counts.active_end),
        "repurchase_cycle_mean_days": _ratio(counts.repurchase_gap_days_sum, counts.repurchases),
        "repurchase_cycle_median_days": counts.repurchase_gap_days_median,
        "repurchases": counts.repurchases,
        "revenue": float(counts.revenue),
        "revenue_returning": float(counts.revenue - counts.revenue_new),
        "revenue_new": float(counts.revenue_new),
        "active_by_tier": dict(sorted(counts.active_by_tier.items())),
        "clv_mean": counts.clv_mean,
        "clv_deciles": counts.clv_deciles,
        "nps": nps,
        "nps_responses": counts.nps_responses,
        "csat": _ratio(100 * counts.csat_satisfied, counts.csat_responses),
        "csat_responses": counts.csat_responses,
    }


@dataclass(frozen=True)
class Anomaly:
    kpi: str
    value: float
    baseline: float
    deviation: float  # (value - baseline) / |baseline|


def anomalies(
    current: Mapping[str, object],
    previous: Sequence[Mapping[str, object]],
    *,
    baseline_periods: int,
    threshold: float,
) -> list[Anomaly]:
    """KPIs of `current` that deviate from the mean of the last `baseline_periods` of `previous` (oldest first)
    by `threshold` or more in either direction. A KPI lacking a value in any of those periods, or whose baseline
    is zero, has no baseline to deviate from."""
    if baseline_periods <= 0 or len(previous) < baseline_periods:
        return []
    window = previous[-baseline_periods:]
    found = []
    for kpi in SCALAR_KPIS:
        value = current.get(kpi)
        history = [row.get(kpi) for row in window]
        if not isinstance(value, int | float) or not all(isinstance(v, int | float) for v in history):
            continue
        baseline = sum(float(v) for v in history if isinstance(v, int | float)) / baseline_periods
        if baseline == 0:
            continue
        deviation = (float(value) - baseline) / abs(baseline)
        # A small tolerance keeps a deviation of exactly the threshold (in decimal terms) on the raised side.
        if abs(deviation) >= threshold - 1e-12:
            found.append(Anomaly(kpi, float(value), baseline, deviation))
    return found
