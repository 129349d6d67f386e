from __future__ import annotations

from services.scoring.domain.lifecycle import Stage
from services.scoring.domain.rfm import Tier
from services.scoring.domain.thresholds import (
    ChangeConfig,
    CrossingKind,
    ScoreSnapshot,
    detect_changes,
)


def snap(
    tier: Tier = Tier.MEDIUM,
    stage: Stage = Stage.ACTIVE,
    risk: float = 0.2,
    reasons: tuple[str, ...] = (),
    clv: float | None = 100.0,
) -> ScoreSnapshot:
    return ScoreSnapshot(tier=tier, stage=stage, churn_risk=risk, churn_reasons=reasons, clv=clv)


def test_identical_snapshots_are_not_material() -> None:
    result = detect_changes(snap(), snap())
    assert result.crossings == () and result.material is False


def test_small_drift_is_not_material() -> None:
    result = detect_changes(snap(risk=0.20, clv=100.0), snap(risk=0.23, clv=105.0))
    assert result.crossings == () and result.material is False


def test_tier_up_and_down() -> None:
    up = detect_changes(snap(tier=Tier.MEDIUM), snap(tier=Tier.HIGH))
    assert [(c.kind, c.old, c.new) for c in up.crossings] == [(CrossingKind.TIER_UP, "medium", "high")]
    assert up.material
    down = detect_changes(snap(tier=Tier.HIGH), snap(tier=Tier.LOW))
    assert [c.kind for c in down.crossings] == [CrossingKind.TIER_DOWN]


def test_stage_change_carries_reasons() -> None:
    result = detect_changes(snap(stage=Stage.ACTIVE), snap(stage=Stage.AT_RISK, risk=0.3, reasons=("no_login",)))
    (c,) = result.crossings
    assert (c.kind, c.old, c.new, c.reasons) == (CrossingKind.STAGE_CHANGED, "active", "at_risk", ("no_login",))


def test_churn_risk_crossings_up_and_down() -> None:
    up = detect_changes(snap(risk=0.45), snap(risk=0.85, reasons=("model_dropout",)))
    assert [(c.kind, c.level) for c in up.crossings] == [
        (CrossingKind.CHURN_RISK_UP, 0.5),
        (CrossingKind.CHURN_RISK_UP, 0.8),
    ]
    assert up.crossings[0].reasons == ("model_dropout",)
    assert up.crossings[0].old == "0.4500" and up.crossings[0].new == "0.8500"
    down = detect_changes(snap(risk=0.82), snap(risk=0.79))
    assert [(c.kind, c.level) for c in down.crossings] == [(CrossingKind.CHURN_RISK_DOWN, 0.8)]
    assert down.material


def test_material_without_crossing() -> None:
    assert detect_changes(snap(risk=0.20), snap(risk=0.26)).material  # risk moved >= 5 points
    assert detect_changes(snap(clv=100.0), snap(clv=111.0)).material  # CLV moved >= 10 %
    assert detect_changes(snap(clv=100.0), snap(clv=None)).material
    assert detect_changes(snap(reasons=()), snap(reasons=("detractor_nps",))).material
    # tiny CLVs: the floor stops 0.01 -> 0.02 counting as +100 %
    assert not detect_changes(snap(clv=0.01), snap(clv=0.02)).material


def test_first_score_is_material_and_reports_risk_levels_and_a_tier_above_the_lowest() -> None:
    result = detect_changes(None, snap(tier=Tier.HIGH, stage=Stage.NEW, risk=0.6))
    assert result.material
    assert [(c.kind, c.level, c.old, c.new) for c in result.crossings] == [
        (CrossingKind.TIER_UP, None, None, "high"),
        (CrossingKind.CHURN_RISK_UP, 0.5, None, "0.6000"),
    ]
    lowest = detect_changes(None, snap(tier=Tier.LOW, stage=Stage.NEW, risk=0.6))
    assert [(c.kind, c.level) for c in lowest.crossings] == [(CrossingKind.CHURN_RISK_UP, 0.5)]


def test_config_levels_and_deltas() -> None:
    cfg = ChangeConfig(churn_levels=(0.3,), material_risk_delta=0.5, material_clv_relative=1.0)
    result = detect_changes(snap(risk=0.2), snap(risk=0.35), cfg)
    assert [(c.kind, c.level) for c in result.crossings] == [(CrossingKind.CHURN_RISK_UP, 0.3)]
    assert not detect_changes(snap(risk=0.31, clv=100.0), snap(risk=0.6, clv=150.0), cfg).material
