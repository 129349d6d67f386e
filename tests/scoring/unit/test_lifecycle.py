from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.scoring.domain.lifecycle import LifecycleConfig, Stage, lifecycle_stage, stage_thresholds

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_potential_when_never_bought() -> None:
    assert lifecycle_stage(NOW, None, None) is Stage.POTENTIAL
    assert lifecycle_stage(NOW, None, None, previous_stage=Stage.CHURNED) is Stage.POTENTIAL


def test_new_within_30_days_of_first_purchase() -> None:
    assert lifecycle_stage(NOW, ago(30), ago(30)) is Stage.NEW
    assert lifecycle_stage(NOW, ago(20), ago(1), typical_interval_days=2.0) is Stage.NEW
    assert lifecycle_stage(NOW, ago(31), ago(31)) is Stage.ACTIVE


def test_active_at_risk_churned_with_own_interval() -> None:
    # interval 20 days: at risk after 30 days of silence, churned after 60
    assert lifecycle_stage(NOW, ago(400), ago(30), typical_interval_days=20.0) is Stage.ACTIVE
    assert lifecycle_stage(NOW, ago(400), ago(31), typical_interval_days=20.0) is Stage.AT_RISK
    assert lifecycle_stage(NOW, ago(400), ago(60), typical_interval_days=20.0) is Stage.AT_RISK
    assert lifecycle_stage(NOW, ago(400), ago(61), typical_interval_days=20.0) is Stage.CHURNED


def test_fixed_thresholds_when_interval_unknown() -> None:
    assert lifecycle_stage(NOW, ago(100), ago(90)) is Stage.ACTIVE
    assert lifecycle_stage(NOW, ago(100), ago(91)) is Stage.AT_RISK
    assert lifecycle_stage(NOW, ago(300), ago(180)) is Stage.AT_RISK
    assert lifecycle_stage(NOW, ago(300), ago(181)) is Stage.CHURNED


def test_floors_protect_very_frequent_buyers() -> None:
    limits = stage_thresholds(2.0, LifecycleConfig())
    assert (limits.at_risk_days, limits.churn_days) == (14.0, 28.0)
    assert lifecycle_stage(NOW, ago(200), ago(10), typical_interval_days=2.0) is Stage.ACTIVE


def test_reactivated_after_at_risk_or_churned_then_active() -> None:
    for prev in (Stage.AT_RISK, Stage.CHURNED):
        assert lifecycle_stage(NOW, ago(400), ago(2), 40.0, previous_stage=prev) is Stage.REACTIVATED
    # stays reactivated while the reactivating purchase is recent
    assert lifecycle_stage(NOW, ago(400), ago(25), 40.0, previous_stage=Stage.REACTIVATED) is Stage.REACTIVATED
    assert lifecycle_stage(NOW, ago(400), ago(35), 40.0, previous_stage=Stage.REACTIVATED) is Stage.ACTIVE
    # a reactivated customer can fall back to at risk
    assert lifecycle_stage(NOW, ago(400), ago(70), 40.0, previous_stage=Stage.REACTIVATED) is Stage.AT_RISK
    assert lifecycle_stage(NOW, ago(400), ago(2), 40.0, previous_stage=Stage.ACTIVE) is Stage.ACTIVE


def test_purchase_after_the_clock_counts_as_now() -> None:
    assert lifecycle_stage(NOW, ago(100), NOW + timedelta(hours=1), 10.0) is Stage.ACTIVE


@pytest.mark.parametrize("stage", list(Stage))
def test_every_stage_is_reachable(stage: Stage) -> None:
    cases = {
        Stage.POTENTIAL: (None, None, None, None),
        Stage.NEW: (ago(5), ago(5), None, None),
        Stage.ACTIVE: (ago(100), ago(10), 20.0, None),
        Stage.AT_RISK: (ago(100), ago(40), 20.0, None),
        Stage.CHURNED: (ago(200), ago(100), 20.0, None),
        Stage.REACTIVATED: (ago(200), ago(3), 20.0, Stage.CHURNED),
    }
    first, last, interval, prev = cases[stage]
    assert lifecycle_stage(NOW, first, last, interval, prev) is stage
