"""What scoring does while the base is too small for percentile tiers and fitted models.

With fewer than ``min_buyers_to_fit`` buyers, "top 20 % by CLV" ranks a handful of people against
each other (the only customer of a new shop would be top tier with 10 dollars) and BG/NBD fits are
noise. Until the base is big enough the tier is therefore an absolute spend rule (the foundation's
rule: high >= 1000, medium >= 200, configurable) and RFM is scored against fixed prior edges that
describe a typical retail base. Both are replaced by base-relative figures at the first refit with
enough buyers.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.scoring.domain.customer_score import ScoringModel
from services.scoring.domain.rfm import RfmEdges, Tier, rank_reference

# Priors for RFM quintile edges: recency in days (lower is better), purchase count, total spend.
PRIOR_RFM_EDGES = RfmEdges(
    recency=(14.0, 30.0, 90.0, 180.0),
    frequency=(1.0, 2.0, 3.0, 5.0),
    monetary=(50.0, 100.0, 200.0, 1000.0),
)


@dataclass(frozen=True)
class SmallBaseConfig:
    high_spend: float = 1000.0
    medium_spend: float = 200.0

    def __post_init__(self) -> None:
        if not 0 <= self.medium_spend <= self.high_spend:
            raise ValueError("small-base spend thresholds need 0 <= medium <= high")


def tier_for_spend(total_spend: float, config: SmallBaseConfig | None = None) -> Tier:
    """No hysteresis: total spend only moves on a purchase or refund, it does not drift with the clock."""
    cfg = config or SmallBaseConfig()
    if total_spend >= cfg.high_spend:
        return Tier.HIGH
    if total_spend >= cfg.medium_spend:
        return Tier.MEDIUM
    return Tier.LOW


def prior_model(edges: RfmEdges = PRIOR_RFM_EDGES) -> ScoringModel:
    """A model with no fitted parameters: RFM against ``edges``; its rank reference is never used
    because the tier comes from ``tier_for_spend``."""
    return ScoringModel(rfm_edges=edges, rfm_rank=rank_reference([0.0]))
