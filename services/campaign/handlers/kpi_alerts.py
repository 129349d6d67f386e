"""A `kpi.anomaly` from insights becomes an alert to the configured account managers, exactly once.

One `pending` alert per configured destination (`RETAIN_ALERT_EMAIL`, `RETAIN_ALERT_WEBHOOK_URL`), keyed by the
anomaly's event id and the channel: a redelivered or replayed anomaly finds its key taken and adds nothing, and the
sender delivers each row once (see handlers/sender.py). With no destination configured the decision is recorded
as skipped, so the anomaly is not lost from the record.
"""

from __future__ import annotations

from libs.common.consumer import BatchHandler, HandlerContext, Subscription, one_by_one
from libs.common.contracts import KpiAnomaly, parse
from libs.common.envelope import CloudEvent
from libs.common.topics import INSIGHTS_EVENTS
from services.campaign.adapters import campaigns
from services.campaign.handlers.deps import CampaignDeps

KPI_ALERT_CAMPAIGN = "kpi-anomalies"
KPI_ANOMALY = "kpi.anomaly"


def alert_text(anomaly: KpiAnomaly) -> tuple[str, str]:
    """(subject, body) of the alert, in plain terms."""
    direction = "above" if anomaly.deviation > 0 else "below"
    change = abs(anomaly.deviation)
    period = anomaly.period_label
    subject = f"KPI anomaly: {anomaly.kpi} {change:.0%} {direction} baseline in {period}"
    body = (
        f"{anomaly.kpi} was {anomaly.value:.4g} in {period}, {change:.1%} {direction} its baseline "
        f"of {anomaly.baseline:.4g} (the mean of the previous {anomaly.baseline_periods} periods)."
    )
    return subject, body


def kpi_alert_handler(deps: CampaignDeps) -> BatchHandler:
    async def on_kpi_anomaly(ctx: HandlerContext, event: CloudEvent) -> None:
        anomaly = parse(event, KpiAnomaly)  # data that does not match is dead-lettered with the reason
        subject, body = alert_text(anomaly)
        now = deps.now(event.time)
        settings = deps.settings
        destinations = [
            channel
            for channel, configured in (("email", settings.alert_email), ("webhook", settings.alert_webhook_url))
            if configured
        ]
        base = {
            "customer_id": event.subject,  # the KPI: an anomaly concerns the whole base, not one customer
            "campaign_id": KPI_ALERT_CAMPAIGN,
            "kind": "alert",
            "trigger": {"kind": KPI_ANOMALY, "event_id": event.id, "details": anomaly.wire()},
            "decided_at": now,
        }
        if not destinations:
            await campaigns.insert_action(
                ctx.session,
                {
                    **base,
                    "idempotency_key": f"{KPI_ANOMALY}:{event.id}",
                    "status": "skipped",
                    "reason": "no_alert_destination",
                    "payload": {"subject": subject, "body": body},
                },
            )
            return
        for channel in destinations:
            action = {"type": "alert", "to": "account_manager", "channel": channel, "message": body}
            await campaigns.insert_action(
                ctx.session,
                {
                    **base,
                    "idempotency_key": f"{KPI_ANOMALY}:{event.id}:{channel}",
                    "channel": channel,
                    "status": "pending",
                    "payload": {"action": action, "to": "account_manager", "subject": subject, "body": body},
                    "next_attempt_at": now,
                },
            )

    return one_by_one(on_kpi_anomaly)


def kpi_alert_subscription(deps: CampaignDeps) -> Subscription:
    return Subscription("insights-events", (INSIGHTS_EVENTS,), kpi_alert_handler(deps), frozenset({KPI_ANOMALY}))
