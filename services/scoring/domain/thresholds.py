"""Compare two score snapshots of a customer: which thresholds were crossed, and is the change
worth a ``score.changed`` event. Small drifts of the continuous scores happen on every event and
would otherwise flood the topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.scoring.domain.churn import crossed_levels
from services.scoring.domain.lifecycle import Stage
from services.scoring.domain.rfm import TIER_ORDER, Tier


class CrossingKind(StrEnum):
    TIER_UP = "tier_up"
    TIER_DOWN = "tier_down"
    STAGE_CHANGED = "stage_changed"
    CHURN_RISK_UP = "churn_risk_up"
    CHURN_RISK_DOWN = "churn_risk_down"


@dataclass(frozen=True)
class ScoreSnapshot:
    tier: Tier
    stage: Stage
    churn_risk: float
    churn_reasons: tuple[str, ...] = ()  # reason codes
    clv: float | None = None


@dataclass(frozen=True)
class ThresholdCrossing:
    kind: CrossingKind
    old: str | None  # tier/stage name or risk value formatted; None on a first score
    new: str
    level: float | None = None  # the churn level crossed, for churn kinds
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeConfig:
    churn_levels: tuple[float, ...] = (0.5, 0.8)
    material_risk_delta: float = 0.05  # absolute change in risk that is material by itself
    material_clv_relative: float = 0.10  # relative CLV change that is material by itself
    clv_floor: float = 1.0  # CLV below this is treated as this, so 0.01 -> 0.02 is not +100 %


@dataclass(frozen=True)
class ChangeAssessment:
    crossings: tuple[ThresholdCrossing, ...]
    material: bool


def _clv_changed(old: float | None, new: float | None, cfg: ChangeConfig) -> bool:
    if old is None or new is None:
        return (old is None) != (new is None)
    base = max(abs(old), cfg.clv_floor)
    return abs(new - old) / base >= cfg.material_clv_relative


def detect_changes(
    old: ScoreSnapshot | None, new: ScoreSnapshot, config: ChangeConfig | None = None
) -> ChangeAssessment:
    """Crossings between snapshots. A first score (old None) is always material; it reports churn
    levels crossed from 0 and a tier above the lowest as a tier_up from none, so reaching a tier gives one
    crossing whether the events that led there arrived in one batch (first score already high) or several
    (first score low, then high); no stage change (a first stage is not a change)."""
    cfg = config or ChangeConfig()
    crossings: list[ThresholdCrossing] = []
    if old is None and TIER_ORDER[new.tier] > min(TIER_ORDER.values()):
        crossings.append(ThresholdCrossing(CrossingKind.TIER_UP, None, new.tier.value))
    if old is not None:
        if new.tier != old.tier:
            up = TIER_ORDER[new.tier] > TIER_ORDER[old.tier]
            crossings.append(
                ThresholdCrossing(
                    CrossingKind.TIER_UP if up else CrossingKind.TIER_DOWN, old.tier.value, new.tier.value
                )
            )
        if new.stage != old.stage:
            crossings.append(
                ThresholdCrossing(
                    CrossingKind.STAGE_CHANGED, old.stage.value, new.stage.value, reasons=new.churn_reasons
                )
            )
    old_risk = None if old is None else old.churn_risk
    crossings.extend(_risk_crossings(old_risk, new.churn_risk, cfg.churn_levels, new.churn_reasons))
    if old is None:
        return ChangeAssessment(tuple(crossings), material=True)
    material = (
        bool(crossings)
        or abs(new.churn_risk - old.churn_risk) >= cfg.material_risk_delta
        or _clv_changed(old.clv, new.clv, cfg)
        or set(new.churn_reasons) != set(old.churn_reasons)
    )
    return ChangeAssessment(tuple(crossings), material)


def _risk_crossings(
    old: float | None, new: float, levels: Sequence[float], reasons: tuple[str, ...]
) -> list[ThresholdCrossing]:
    out: list[ThresholdCrossing] = []
    for c in crossed_levels(old, new, levels):
        kind = CrossingKind.CHURN_RISK_UP if c.direction == "up" else CrossingKind.CHURN_RISK_DOWN
        out.append(
            ThresholdCrossing(kind, None if old is None else f"{old:.4f}", f"{new:.4f}", level=c.level, reasons=reasons)
        )
    return out
