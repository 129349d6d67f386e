"""The console's own settings on top of the shared ones (same `RETAIN_` prefix)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from libs.common.settings import Settings, service_settings


class ConsoleSettings(Settings):
    # Encrypts and signs the session cookie (which carries the signed-in API key). Unset: a random key per process,
    # so a restart signs everyone out; production sets it.
    console_session_secret: SecretStr | None = None
    console_session_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    # Served over https in production: the cookie is then marked Secure.
    console_secure_cookies: bool = False
    # The services the console reads (their HTTP APIs only; it owns no tables).
    console_profile_url: str = "http://127.0.0.1:8002"
    console_scoring_url: str = "http://127.0.0.1:8003"
    console_campaign_url: str = "http://127.0.0.1:8004"
    console_feedback_url: str = "http://127.0.0.1:8005"
    console_insights_url: str = "http://127.0.0.1:8006"
    console_upstream_timeout_s: float = Field(default=5.0, gt=0)
    # The at-risk worklist: customers whose churn risk is at least this, the largest CLV at risk first.
    console_risk_level: float = Field(default=0.5, ge=0, le=1)
    console_worklist_size: int = Field(default=50, ge=1, le=500)
    # Scores read per worklist (pages of scoring's API): the candidates ranked by CLV at risk.
    console_worklist_candidates: int = Field(default=2000, ge=1, le=20_000)


def console_settings(settings: Settings | None) -> ConsoleSettings:
    return service_settings(settings, ConsoleSettings, "console")
