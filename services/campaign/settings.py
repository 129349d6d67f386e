"""Campaign's own settings on top of the shared ones (same `RETAIN_` prefix, same env file rules)."""

from __future__ import annotations

from datetime import time

from libs.common.settings import Settings, service_settings


class CampaignSettings(Settings):
    # Email (aiosmtplib); the default suits a local relay such as `python -m aiosmtpd -n`.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_from: str = "Retain <no-reply@retain.example>"
    smtp_timeout_s: float = 10.0
    smtp_use_tls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    # SMS and WeCom gateways are HTTP webhooks; unset means that channel cannot deliver (recorded as failed).
    sms_webhook_url: str | None = None
    wecom_webhook_url: str | None = None
    webhook_timeout_s: float = 10.0
    # Where alerts for account managers go (AlertAction.channel picks one of the two).
    alert_email: str | None = None
    alert_webhook_url: str | None = None

    # The built-in "top tier welcome" campaign seeded by the first migration; off = ignored at run time.
    builtin_campaigns: bool = True

    # Sender: retries with exponential backoff, then the action is recorded as failed.
    sender_poll_interval_s: float = 0.5
    send_max_attempts: int = 5
    send_backoff_s: float = 2.0
    send_backoff_max_s: float = 600.0
    scheduler_poll_interval_s: float = 5.0
    scheduler_batch_size: int = 100
    # Time-based triggers fire at this local time in the customer's zone (inside waking hours).
    scheduled_fire_local_time: time = time(10, 0)

    # Guards (defaults are the issue's: at most 2 marketing messages per 7 days, quiet 21:00-08:00).
    frequency_cap_messages: int = 2
    frequency_cap_days: int = 7
    quiet_hours_start: time = time(21, 0)
    quiet_hours_end: time = time(8, 0)
    default_timezone: str = "UTC"
    # Messages on the generic "webhook" channel (a CRM or marketing-automation endpoint).
    message_webhook_url: str | None = None


def campaign_settings(settings: Settings | None) -> CampaignSettings:
    return service_settings(settings, CampaignSettings, "campaign")
