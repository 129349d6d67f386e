"""Insights' own settings on top of the shared ones (same `RETAIN_` environment prefix)."""

from __future__ import annotations

from pydantic import Field

from libs.common.settings import Settings, service_settings
from services.insights.domain.periods import Grain


class InsightsSettings(Settings):
    # Periods touched by consumed events are recomputed this often in the background (the API recomputes what it
    # reads first, so this only bounds how stale the gauges and anomaly checks are).
    insights_refresh_interval_s: float = Field(default=2.0, gt=0)
    # Periods recomputed per transaction of the background refresh.
    insights_refresh_batch: int = Field(default=8, ge=1)
    # A KPI's baseline is the mean of this many previous periods; a deviation of `threshold` or more (a fraction,
    # either direction) raises `kpi.anomaly` once per KPI and period.
    insights_anomaly_baseline_periods: int = Field(default=3, ge=1)
    insights_anomaly_threshold: float = Field(default=0.15, gt=0)
    insights_anomaly_grains: list[Grain] = Field(default_factory=lambda: [Grain.MONTH])
    # Periods a KPI or cohort query returns when it gives no `from`.
    insights_default_periods: int = Field(default=12, ge=1)
    insights_max_periods: int = Field(default=520, ge=1)
    # The churned-customers report: its period (one report per closed period, announced by `churn.report_ready`),
    # how many churned customers it lists by CLV lost, and which trait values it calls over-represented.
    insights_churn_report_grain: Grain = Grain.WEEK
    insights_churn_top: int = Field(default=20, ge=1, le=1000)
    insights_churn_min_lift: float = Field(default=1.2, gt=0)
    insights_churn_min_customers: int = Field(default=3, ge=1)
    # A counted report is served until a score, erasure or join changes it, or until it is this old (the traits it
    # compares are the latest profiles as of its counting).
    insights_churn_report_max_age_s: float = Field(default=3600.0, ge=0)
    # Behavioural clusters: k (0: chosen by silhouette within the range), refit interval, seed of k-means++.
    insights_cluster_k: int = Field(default=0, ge=0, le=50)
    insights_cluster_k_min: int = Field(default=2, ge=1)
    insights_cluster_k_max: int = Field(default=8, ge=1, le=50)
    insights_cluster_interval_s: float = Field(default=86_400.0, gt=0)
    insights_cluster_seed: int = 7
    consumer_batch_size: int = 5_000


def insights_settings(settings: Settings | None) -> InsightsSettings:
    return service_settings(settings, InsightsSettings, "insights")
