"""Scoring's own settings (`RETAIN_SCORING_*`), on top of the shared ones."""

from __future__ import annotations

from pydantic import Field, model_validator

from libs.common.settings import Settings, service_settings
from services.scoring.domain.churn import ChurnConfig
from services.scoring.domain.customer_score import ScoringConfig
from services.scoring.domain.lifecycle import LifecycleConfig
from services.scoring.domain.rfm import TierConfig
from services.scoring.domain.small_base import SmallBaseConfig
from services.scoring.domain.thresholds import ChangeConfig


class ScoringSettings(Settings):
    scoring_tier_high_share: float = Field(0.20, gt=0, le=1, description="Top share of buyers in tier high.")
    scoring_tier_medium_share: float = Field(0.30, ge=0, le=1, description="Next share of buyers in tier medium.")
    scoring_tier_hysteresis: float = Field(0.02, ge=0, lt=0.5, description="Rank margin to change tier.")
    scoring_churn_levels: tuple[float, ...] = (0.5, 0.8)
    scoring_material_risk_delta: float = 0.05
    scoring_material_clv_relative: float = 0.10
    scoring_clv_horizon_months: int = Field(12, ge=1, le=120)
    scoring_clv_discount_rate_monthly: float = Field(0.01, ge=0, lt=1)
    scoring_new_days: float = 30.0
    scoring_churn_days_unknown: float = 180.0
    scoring_at_risk_days_unknown: float = 90.0
    scoring_churn_multiplier: float = 3.0
    scoring_no_login_days: float = 90.0
    # Below this many buyers tiers use absolute spend and RFM prior edges (domain/small_base.py).
    scoring_min_buyers_to_fit: int = Field(50, ge=2)
    scoring_small_base_high_spend: float = 1000.0
    scoring_small_base_medium_spend: float = 200.0
    # A complaint counts as open this long after it was received (feedback has no "resolved" event
    # for complaints); an SLA breach counts as a churn signal this long.
    scoring_complaint_open_days: float = 30.0
    scoring_sla_breach_days: float = 90.0
    scoring_refit_interval_s: float = Field(6 * 3600.0, gt=0)
    scoring_refit_penalizer: float = Field(0.0, ge=0)
    # Each refit also fits on the purchases up to this many days before the clock and scores the rest (the holdout):
    # the purchase model that predicts it best drives P(alive), expected purchases and CLV.
    scoring_holdout_days: float = Field(90.0, ge=1)
    # A refit whose chosen model misses the holdout's total repeat purchases by more than this share emits
    # scoring.drift_detected.
    scoring_drift_threshold: float = Field(0.2, gt=0)
    # Score history older than this (by the time of the change) is dropped at each refit.
    scoring_history_retention_days: float = Field(730.0, gt=0)
    # How often the due-time scheduler looks for customers whose stage or no-login threshold is due, and how many
    # it claims per transaction.
    scoring_due_interval_s: float = Field(30.0, gt=0)
    scoring_due_batch_size: int = Field(500, ge=1, le=10_000)
    scoring_rescore_batch_size: int = Field(1000, ge=1, le=10_000)  # ids go into one IN (...) list

    @model_validator(mode="after")
    def _shares_fit(self) -> ScoringSettings:
        if self.scoring_tier_high_share + self.scoring_tier_medium_share > 1:
            raise ValueError("scoring_tier_high_share + scoring_tier_medium_share must be at most 1")
        if not 0 <= self.scoring_small_base_medium_spend <= self.scoring_small_base_high_spend:
            raise ValueError("need 0 <= scoring_small_base_medium_spend <= scoring_small_base_high_spend")
        return self

    def scoring_config(self) -> ScoringConfig:
        return ScoringConfig(
            tier=TierConfig(
                high_share=self.scoring_tier_high_share,
                medium_share=self.scoring_tier_medium_share,
                hysteresis=self.scoring_tier_hysteresis,
            ),
            lifecycle=LifecycleConfig(
                new_days=self.scoring_new_days,
                churn_multiplier=self.scoring_churn_multiplier,
                at_risk_days_unknown=self.scoring_at_risk_days_unknown,
                churn_days_unknown=self.scoring_churn_days_unknown,
            ),
            churn=ChurnConfig(no_login_days=self.scoring_no_login_days),
            clv_horizon_months=self.scoring_clv_horizon_months,
            clv_discount_rate_monthly=self.scoring_clv_discount_rate_monthly,
            min_buyers_to_fit=self.scoring_min_buyers_to_fit,
        )

    def change_config(self) -> ChangeConfig:
        return ChangeConfig(
            churn_levels=self.scoring_churn_levels,
            material_risk_delta=self.scoring_material_risk_delta,
            material_clv_relative=self.scoring_material_clv_relative,
        )

    def small_base_config(self) -> SmallBaseConfig:
        return SmallBaseConfig(
            high_spend=self.scoring_small_base_high_spend, medium_spend=self.scoring_small_base_medium_spend
        )


def scoring_settings(settings: Settings | None) -> ScoringSettings:
    return service_settings(settings, ScoringSettings, "scoring")
