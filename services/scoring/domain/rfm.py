"""RFM scores, percentile ranks over the customer base and value tiers with hysteresis.

Scores are relative to the base, but a live service scores one customer at a time, so the base is
summarised once (quintile edges, a rank reference) and single customers are scored against that
summary. The batch and single-customer paths use the same summary and therefore agree.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from services.scoring.domain.bgnbd import ArrayLike, FloatArray

QuintileEdges = tuple[float, float, float, float]
_CUT_TOLERANCE = 1e-9


class Tier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


TIER_ORDER: dict[Tier, int] = {Tier.LOW: 0, Tier.MEDIUM: 1, Tier.HIGH: 2}


@dataclass(frozen=True)
class RfmValues:
    """Raw RFM as of a clock. ``recency_days`` is None for someone who never bought."""

    recency_days: float | None
    frequency: int  # number of purchases
    monetary: float  # total spend


@dataclass(frozen=True)
class RfmScore:
    values: RfmValues
    r: int  # 1..5, 5 = most recent
    f: int  # 1..5, 5 = most purchases
    m: int  # 1..5, 5 = highest spend

    @property
    def composite(self) -> int:
        """Unweighted sum (3..15); the fallback ranking key when no CLV is available."""
        return self.r + self.f + self.m

    @property
    def code(self) -> str:
        return f"{self.r}{self.f}{self.m}"


@dataclass(frozen=True)
class RfmEdges:
    recency: QuintileEdges
    frequency: QuintileEdges
    monetary: QuintileEdges


def rfm_values(
    as_of: datetime, last_purchase_at: datetime | None, purchase_count: int, total_spend: float
) -> RfmValues:
    if last_purchase_at is None or purchase_count <= 0:
        return RfmValues(recency_days=None, frequency=0, monetary=0.0)
    # a purchase stamped after the clock (late clock, replay skew) counts as today, not the future
    recency = max((as_of - last_purchase_at).total_seconds() / 86400.0, 0.0)
    return RfmValues(recency_days=recency, frequency=purchase_count, monetary=total_spend)


def quintile_edges(values: ArrayLike) -> QuintileEdges:
    """The 20/40/60/80 % quantiles of the base (linear interpolation)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("cannot compute quintiles of an empty base")
    q = np.quantile(arr, [0.2, 0.4, 0.6, 0.8])
    return (float(q[0]), float(q[1]), float(q[2]), float(q[3]))


def quintile_scores(values: ArrayLike, edges: QuintileEdges, higher_is_better: bool = True) -> npt.NDArray[np.int64]:
    """Scores 1..5 against fixed edges.

    Higher-is-better: score = 1 + number of edges strictly below the value. Lower-is-better:
    1 + number of edges strictly above. Equal values therefore always get the same score whatever
    their order in the input, and a value lying on an edge gets the less favourable score, so
    heavily tied bases (many one-time buyers) do not spread ties across quintiles arbitrarily.
    """
    arr = np.asarray(values, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    if higher_is_better:
        below = np.searchsorted(e, arr, side="left")
        return np.asarray(1 + below, dtype=np.int64)
    above = e.size - np.searchsorted(e, arr, side="right")
    return np.asarray(1 + above, dtype=np.int64)


def rfm_edges(recency_days: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> RfmEdges:
    """Edges over the base. Pass buyers only: people who never bought would flood the low quintiles."""
    return RfmEdges(
        recency=quintile_edges(recency_days),
        frequency=quintile_edges(frequency),
        monetary=quintile_edges(monetary),
    )


def quintile_score(value: float, edges: QuintileEdges, higher_is_better: bool = True) -> int:
    """``quintile_scores`` of one value. Every event scores a customer, and numpy's per-call overhead on a scalar
    was a tenth of scoring's CPU; bisect on the four sorted edges gives the same answer. NaN, which numpy orders
    after every number and bisect does not, goes the numpy way."""
    if not (math.isfinite(value) and all(math.isfinite(edge) for edge in edges)):
        return int(quintile_scores(value, edges, higher_is_better))
    if higher_is_better:
        return 1 + bisect_left(edges, value)
    return 1 + len(edges) - bisect_right(edges, value)


def score_rfm(values: RfmValues, edges: RfmEdges) -> RfmScore:
    if values.recency_days is None:
        return RfmScore(values=values, r=1, f=1, m=1)
    r = quintile_score(values.recency_days, edges.recency, higher_is_better=False)
    f = quintile_score(float(values.frequency), edges.frequency)
    m = quintile_score(values.monetary, edges.monetary)
    return RfmScore(values=values, r=r, f=f, m=m)


@dataclass(frozen=True, eq=False)
class RankReference:
    """A sorted sample of the base (all of it if small, else evenly spaced quantiles) to turn a value
    into a percentile rank in O(log n) without keeping millions of values per model."""

    sorted_values: FloatArray

    def percentile_rank(self, value: ArrayLike) -> FloatArray:
        """Mid-rank in [0, 1]: share of the base strictly below plus half the share equal. Ties
        get one rank (deterministic), and the middle of a tie block rather than its top or bottom."""
        v = np.asarray(value, dtype=np.float64)
        n = self.sorted_values.size
        lo = np.searchsorted(self.sorted_values, v, side="left")
        hi = np.searchsorted(self.sorted_values, v, side="right")
        return np.asarray((lo + hi) / (2.0 * n), dtype=np.float64)


def rank_reference(values: ArrayLike, max_points: int = 10_001) -> RankReference:
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ValueError("cannot rank against an empty base")
    if arr.size <= max_points:
        return RankReference(np.sort(arr))
    # method="inverted_cdf" picks real observations, so ties in the base stay ties in the sample
    return RankReference(np.quantile(arr, np.linspace(0.0, 1.0, max_points), method="inverted_cdf"))


@dataclass(frozen=True)
class TierConfig:
    high_share: float = 0.20  # top 20 % of the base by value
    medium_share: float = 0.30  # the next 30 %
    hysteresis: float = 0.02  # rank must cross a boundary by this much (2 points) to change tier

    def __post_init__(self) -> None:
        if not (0 < self.high_share and 0 <= self.medium_share and self.high_share + self.medium_share <= 1):
            raise ValueError("tier shares must be positive and sum to at most 1")
        if not 0 <= self.hysteresis < 0.5:
            raise ValueError("hysteresis must be in [0, 0.5)")


def assign_tier(percentile_rank: float, previous: Tier | None = None, config: TierConfig | None = None) -> Tier:
    """Tier for a percentile rank (0 = lowest value, 1 = highest).

    Without a previous tier the plain cut applies. With one, each boundary moves ``hysteresis``
    away from the customer: staying needs less, moving needs the boundary crossed by the margin.
    A customer oscillating around a boundary by less than the margin keeps their tier.
    """
    cfg = config or TierConfig()
    high_cut = 1.0 - cfg.high_share
    medium_cut = high_cut - cfg.medium_share
    if previous is not None:
        level = TIER_ORDER[previous]
        high_cut += -cfg.hysteresis if level >= TIER_ORDER[Tier.HIGH] else cfg.hysteresis
        medium_cut += -cfg.hysteresis if level >= TIER_ORDER[Tier.MEDIUM] else cfg.hysteresis
    # the cuts are sums of decimal fractions (1 - 0.2 + 0.02); without the tolerance a rank of
    # exactly 0.82 would miss a cut computed as 0.8200000000000001
    if percentile_rank >= high_cut - _CUT_TOLERANCE:
        return Tier.HIGH
    if percentile_rank >= medium_cut - _CUT_TOLERANCE:
        return Tier.MEDIUM
    return Tier.LOW
