"""Feedback's own settings on top of the shared ones (same `RETAIN_` prefix)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr

from libs.common.settings import Settings, service_settings


class FeedbackSettings(Settings):
    # HMAC key of the per-customer survey links. Unset: a random key per process is used (and logged as a
    # warning), so links stop working on restart and differ between replicas; production must set it.
    survey_token_secret: SecretStr | None = None
    survey_link_ttl_days: int = Field(default=30, gt=0, le=365)
    # Where the customer-facing survey page lives; the link is `<base>/surveys/<id>?token=...`.
    survey_link_base_url: str = "http://127.0.0.1:8005"
    # Overrides of the default SLA table, in minutes:
    # `{"vip": {"urgent": {"first_response_minutes": 5, "resolution_minutes": 240}}}` (RETAIN_SLA_TABLE as JSON).
    sla_table: dict[str, Any] = Field(default_factory=dict)
    sla_check_interval_s: float = Field(default=5.0, gt=0)
    sla_check_batch_size: int = Field(default=200, gt=0)
    # Tier of a customer scoring has not graded yet: the slowest SLA until we know better.
    default_tier: Literal["vip", "high", "medium", "low"] = "low"
    # Upper bound of comments fed to the theme extractor per request (the newest win); jieba is CPU-bound.
    themes_max_documents: int = Field(default=5000, gt=0)


def feedback_settings(settings: Settings | None) -> FeedbackSettings:
    return service_settings(settings, FeedbackSettings, "feedback")
