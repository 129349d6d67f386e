"""`kpi.anomaly` from insights: one alert per configured destination, exactly once however often it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from services.campaign.adapters.channels import EmailChannel, WebhookChannel
from services.campaign.handlers.kpi_alerts import KPI_ALERT_CAMPAIGN, kpi_alert_handler
from tests.campaign.integration.harness import Harness, SmtpServer, WebhookServer, make_harness
from tests.conftest import Isolation

ANOMALY = CloudEvent(
    id="anomaly-1",
    source="retain/insights",
    type="kpi.anomaly",
    subject="retention_rate",
    time=datetime(2024, 6, 1, tzinfo=UTC),
    data={
        "kpi": "retention_rate",
        "period": "month",
        "period_start": "2024-05-01",
        "period_label": "2024-05",
        "value": 0.4,
        "baseline": 0.5,
        "deviation": -0.2,
        "baseline_periods": 3,
        "threshold": 0.15,
    },
)


@pytest.fixture
async def managed(isolated: Isolation) -> AsyncIterator[Harness]:
    overrides = {"alert_email": "managers@example.com", "alert_webhook_url": "http://127.0.0.1:9/unused"}
    async for h in make_harness(isolated, **overrides):
        yield h


async def deliver(h: Harness, event: CloudEvent) -> None:
    async with h.sessions() as session, session.begin():
        await kpi_alert_handler(h.deps)(HandlerContext(session, h.deps.outbox), [event])


async def test_an_anomaly_alerts_every_configured_destination_once(managed: Harness) -> None:
    h = managed
    await deliver(h, ANOMALY)
    await deliver(h, ANOMALY)  # redelivered after a lost offset commit, or replayed
    rows = await h.actions(campaign=KPI_ALERT_CAMPAIGN)
    assert sorted(row.channel for row in rows) == ["email", "webhook"]
    with SmtpServer() as smtp:
        h.channels.alerts["email"] = EmailChannel(h.settings.model_copy(update={"smtp_port": smtp.port}))
        async with WebhookServer() as hook:
            h.channels.alerts["webhook"] = WebhookChannel(hook.url, 5)
            assert await h.sender().run_once() == 2
            assert await h.sender().run_once() == 0
            [(_, body)] = hook.calls
        [mail] = smtp.sink.messages
    assert mail["To"] == "managers@example.com"
    assert mail["Subject"] == "KPI anomaly: retention_rate 20% below baseline in 2024-05"
    assert body["text"].startswith("retention_rate was 0.4 in 2024-05, 20.0% below its baseline of 0.5")
    assert body["customer_id"] == "retention_rate"
    assert [row.status for row in await h.actions(campaign=KPI_ALERT_CAMPAIGN)] == ["sent", "sent"]
    assert await h.outbox_types() == ["alert.raised", "alert.raised"]


async def test_with_no_destination_the_anomaly_is_recorded_as_skipped(isolated: Isolation) -> None:
    async for h in make_harness(isolated):
        await deliver(h, ANOMALY)
        [row] = await h.actions(campaign=KPI_ALERT_CAMPAIGN)
        assert (row.status, row.reason) == ("skipped", "no_alert_destination")
        assert await h.sender().run_once() == 0
