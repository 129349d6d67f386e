"""Lifecycle stage of a customer as of a clock.

Inactivity is judged against the customer's own rhythm (typical inter-purchase interval) when it
is known, because 60 days without a purchase is alarming for a weekly buyer and normal for a
twice-a-year one. Fixed day counts apply when the rhythm is unknown (fewer than two purchases).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Stage(StrEnum):
    POTENTIAL = "potential"  # known, never bought
    NEW = "new"
    ACTIVE = "active"
    AT_RISK = "at_risk"
    CHURNED = "churned"
    REACTIVATED = "reactivated"


@dataclass(frozen=True)
class LifecycleConfig:
    new_days: float = 30.0  # first purchase at most this long ago -> new
    at_risk_multiplier: float = 1.5  # silence > 1.5 x own interval -> at risk
    churn_multiplier: float = 3.0  # silence > 3 x own interval -> churned
    at_risk_days_unknown: float = 90.0  # same thresholds when the interval is unknown
    churn_days_unknown: float = 180.0
    # Floors keep very frequent buyers (a 2-day interval) from being called churned after a week.
    at_risk_floor_days: float = 14.0
    churn_floor_days: float = 28.0
    # A reactivated customer keeps the label while the reactivating purchase is this recent, so
    # campaigns can greet them back; afterwards they are simply active.
    reactivated_days: float = 30.0


@dataclass(frozen=True)
class StageThresholds:
    at_risk_days: float
    churn_days: float


def stage_thresholds(typical_interval_days: float | None, config: LifecycleConfig) -> StageThresholds:
    if typical_interval_days is None or typical_interval_days <= 0:
        return StageThresholds(config.at_risk_days_unknown, config.churn_days_unknown)
    return StageThresholds(
        at_risk_days=max(config.at_risk_multiplier * typical_interval_days, config.at_risk_floor_days),
        churn_days=max(config.churn_multiplier * typical_interval_days, config.churn_floor_days),
    )


def _days_between(later: datetime, earlier: datetime) -> float:
    # events stamped after the clock (skew, late clock in replay) count as "now", never negative
    return max((later - earlier).total_seconds() / 86400.0, 0.0)


def lifecycle_stage(
    as_of: datetime,
    first_purchase_at: datetime | None,
    last_purchase_at: datetime | None,
    typical_interval_days: float | None = None,
    previous_stage: Stage | None = None,
    config: LifecycleConfig | None = None,
) -> Stage:
    """Stage as of ``as_of``. Rules, first match wins:

    1. no purchase -> potential
    2. first purchase within ``new_days`` -> new (too early to judge inactivity)
    3. silence > churn threshold -> churned
    4. silence > at-risk threshold -> at_risk
    5. previously at_risk/churned (so a purchase has since brought silence back under the at-risk
       threshold) -> reactivated; previously reactivated and last purchase within
       ``reactivated_days`` -> still reactivated
    6. otherwise active
    """
    cfg = config or LifecycleConfig()
    if first_purchase_at is None or last_purchase_at is None:
        return Stage.POTENTIAL
    if _days_between(as_of, first_purchase_at) <= cfg.new_days:
        return Stage.NEW
    silence = _days_between(as_of, last_purchase_at)
    limits = stage_thresholds(typical_interval_days, cfg)
    if silence > limits.churn_days:
        return Stage.CHURNED
    if silence > limits.at_risk_days:
        return Stage.AT_RISK
    if previous_stage in (Stage.AT_RISK, Stage.CHURNED):
        return Stage.REACTIVATED
    if previous_stage is Stage.REACTIVATED and silence <= cfg.reactivated_days:
        return Stage.REACTIVATED
    return Stage.ACTIVE
