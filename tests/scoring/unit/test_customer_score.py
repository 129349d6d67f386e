from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from services.scoring.domain.bgnbd import expected_purchases, fit_bgnbd, probability_alive
from services.scoring.domain.churn import ReasonCode
from services.scoring.domain.customer_score import (
    CustomerFacts,
    ScoringConfig,
    ScoringModel,
    bgnbd_inputs,
    build_scoring_model,
    score_customer,
)
from services.scoring.domain.lifecycle import Stage
from services.scoring.domain.rfm import Tier, assign_tier
from services.scoring.domain.thresholds import CrossingKind, ScoreSnapshot, detect_changes

AS_OF = datetime(1998, 6, 30, 12, 0, tzinfo=UTC)


def _facts_from_summary(summary: pd.DataFrame) -> list[CustomerFacts]:
    out = []
    for cid, row in summary.iterrows():
        first = AS_OF - timedelta(days=float(row["T"]))
        count = int(row["frequency"]) + 1
        out.append(
            CustomerFacts(
                customer_id=str(cid),
                first_purchase_at=first,
                last_purchase_at=first + timedelta(days=float(row["recency"])),
                purchase_count=count,
                total_spend=max(float(row["monetary_value"]), 1.0) * count,
                typical_interval_days=float(row["recency"]) / row["frequency"] if row["frequency"] > 0 else None,
            )
        )
    return out


@pytest.fixture(scope="module")
def base(cdnow_days: pd.DataFrame) -> list[CustomerFacts]:
    return _facts_from_summary(cdnow_days)


@pytest.fixture(scope="module")
def model(base: list[CustomerFacts]) -> ScoringModel:
    return build_scoring_model([*base, CustomerFacts("prospect")], AS_OF)


def test_bgnbd_inputs_are_whole_utc_days() -> None:
    first = datetime(1998, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # 1998-01-02 01:30 UTC
    last = datetime(1998, 1, 10, 0, 15, tzinfo=UTC)
    assert bgnbd_inputs(first, last, 4, AS_OF) == (3.0, 8.0, 179.0)
    # purchases stamped after the clock are clamped to it
    assert bgnbd_inputs(first, AS_OF + timedelta(days=3), 2, AS_OF) == (1.0, 179.0, 179.0)


def test_model_fits_the_same_parameters_as_the_summary(model: ScoringModel, cdnow_days: pd.DataFrame) -> None:
    direct = fit_bgnbd(cdnow_days["frequency"], cdnow_days["recency"], cdnow_days["T"])
    assert model.bgnbd is not None and model.gamma_gamma is not None and model.clv_rank is not None
    np.testing.assert_allclose(
        [model.bgnbd.r, model.bgnbd.alpha, model.bgnbd.a, model.bgnbd.b],
        [direct.r, direct.alpha, direct.a, direct.b],
        rtol=1e-6,
    )


def test_score_of_a_repeat_buyer(model: ScoringModel, base: list[CustomerFacts]) -> None:
    facts = next(c for c in base if c.customer_id == "00005")  # 11 purchases in the period
    score = score_customer(facts, AS_OF, model)
    assert model.bgnbd is not None
    f, r, t = bgnbd_inputs(facts.first_purchase_at, facts.last_purchase_at, facts.purchase_count, AS_OF)  # type: ignore[arg-type]
    assert score.p_alive == pytest.approx(float(probability_alive(model.bgnbd, f, r, t)))
    assert score.expected_purchases_30d == pytest.approx(float(expected_purchases(model.bgnbd, 30.0, f, r, t)))
    assert score.expected_purchases_30d is not None and score.expected_purchases_90d is not None
    assert 0 < score.expected_purchases_30d < score.expected_purchases_90d
    assert score.clv is not None and score.clv > 0
    assert score.value_basis == "clv" and 0.0 <= score.value_rank <= 1.0
    assert score.tier in set(Tier)
    assert score.rfm.f == 5
    # next purchase date: the first whole day from the clock where 0.5 purchases are expected
    assert score.predicted_next_purchase_at is not None
    days = (score.predicted_next_purchase_at - AS_OF).days
    assert float(expected_purchases(model.bgnbd, float(days), f, r, t)) >= 0.5
    assert float(expected_purchases(model.bgnbd, float(days - 1), f, r, t)) < 0.5


def test_best_customers_are_high_tier_and_one_time_buyers_are_not(
    model: ScoringModel, base: list[CustomerFacts]
) -> None:
    picks = np.random.default_rng(3).choice(len(base), 2000, replace=False)
    sample = [base[i] for i in picks]
    scores = [score_customer(c, AS_OF, model) for c in sample]
    tiers = pd.Series([s.tier.value for s in scores]).value_counts(normalize=True)
    # a random sample of the ranked base: shares near the configured 20/30/50 %
    assert tiers["high"] == pytest.approx(0.2, abs=0.05)
    assert tiers["medium"] == pytest.approx(0.3, abs=0.06)
    one_timers_old = [s for s, c in zip(scores, sample, strict=True) if c.purchase_count == 1]
    assert all(s.tier is not Tier.HIGH for s in one_timers_old)
    assert all(s.stage is Stage.CHURNED for s in one_timers_old)  # > 180 days since the only purchase


def test_prospect_without_purchases(model: ScoringModel) -> None:
    score = score_customer(CustomerFacts("p-1", last_login_at=AS_OF - timedelta(days=2)), AS_OF, model)
    assert score.stage is Stage.POTENTIAL
    assert score.tier is Tier.LOW and score.value_basis == "none"
    assert score.p_alive is None and score.clv is None and score.predicted_next_purchase_at is None
    assert score.churn.risk == 0.0
    assert score.rfm.code == "111"


def test_churn_signals_flow_into_the_score(model: ScoringModel) -> None:
    facts = CustomerFacts(
        "c-9",
        first_purchase_at=AS_OF - timedelta(days=300),
        last_purchase_at=AS_OF - timedelta(days=20),
        purchase_count=6,
        total_spend=300.0,
        typical_interval_days=56.0,
        last_login_at=AS_OF - timedelta(days=120),
        purchase_ratio_30_90=0.3,
        login_ratio_30_90=0.5,
        spend_ratio_30_90=0.8,
        open_complaints=1,
        sla_breached=True,
        last_nps=4,
    )
    score = score_customer(facts, AS_OF, model)
    codes = set(score.churn.reason_codes)
    expected = {
        ReasonCode.NO_LOGIN,
        ReasonCode.ENGAGEMENT_DROP,
        ReasonCode.SPEND_OFF_BASELINE,
        ReasonCode.PURCHASES_OFF_BASELINE,
        ReasonCode.LOGINS_OFF_BASELINE,
        ReasonCode.OPEN_COMPLAINTS,
        ReasonCode.SLA_BREACH,
        ReasonCode.DETRACTOR_NPS,
    }
    assert expected <= codes
    assert score.churn.risk > 0.9
    no_login = next(r for r in score.churn.reasons if r.code is ReasonCode.NO_LOGIN)
    assert no_login.numbers["days_since_login"] == pytest.approx(120.0)
    assert score.stage is Stage.ACTIVE


def test_previous_snapshot_drives_reactivation_hysteresis_and_changes(model: ScoringModel) -> None:
    facts = CustomerFacts(
        "c-back",
        first_purchase_at=AS_OF - timedelta(days=400),
        last_purchase_at=AS_OF - timedelta(days=3),
        purchase_count=5,
        total_spend=250.0,
        typical_interval_days=30.0,
    )
    fresh = score_customer(facts, AS_OF, model)
    assert fresh.stage is Stage.ACTIVE
    was_churned = ScoreSnapshot(tier=Tier.LOW, stage=Stage.CHURNED, churn_risk=0.9, churn_reasons=("model_dropout",))
    back = score_customer(facts, AS_OF, model, previous=was_churned)
    assert back.stage is Stage.REACTIVATED
    change = detect_changes(was_churned, back.snapshot())
    assert change.material
    assert CrossingKind.STAGE_CHANGED in {c.kind for c in change.crossings}
    # a previous tier one step away within the hysteresis margin is kept
    for tier in Tier:
        prev = ScoreSnapshot(tier=tier, stage=Stage.ACTIVE, churn_risk=0.0)
        kept = score_customer(facts, AS_OF, model, previous=prev).tier
        assert kept is assign_tier(fresh.value_rank, tier)
    # re-scoring with unchanged facts is stable and not material
    again = score_customer(facts, AS_OF, model, previous=fresh.snapshot())
    assert again.snapshot() == fresh.snapshot()
    assert detect_changes(fresh.snapshot(), again.snapshot()).material is False


def test_small_base_falls_back_to_rfm_ranking(base: list[CustomerFacts]) -> None:
    small = build_scoring_model(base[:30], AS_OF, ScoringConfig(min_buyers_to_fit=50))
    assert small.bgnbd is None and small.clv_rank is None
    score = score_customer(base[0], AS_OF, small)
    assert score.value_basis == "rfm"
    assert score.clv is None and score.p_alive is None
    assert 0.0 <= score.value_rank <= 1.0


def test_model_needs_at_least_one_buyer() -> None:
    with pytest.raises(ValueError):
        build_scoring_model([CustomerFacts("x")], AS_OF)
