"""KPI anomalies: raised once per KPI and closed period against the mean of the previous three, never under the
threshold; and over Kafka, a constructed drop reaches the account managers' webhook as one alert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from libs.common.db import create_engine
from libs.common.envelope import CloudEvent
from services.campaign.bootstrap import create_app as create_campaign
from services.campaign.settings import CampaignSettings
from services.ingest.bootstrap import create_app as create_ingest
from services.insights.bootstrap import create_app as create_insights
from services.insights.settings import insights_settings
from tests.campaign.integration.harness import WebhookServer
from tests.conftest import ADMIN_KEY, Isolation, running
from tests.ingest.conftest import ingest_settings
from tests.insights.integration.harness import Harness, harness, purchase
from tests.waiting import eventually

CUSTOMERS = [f"c{n}" for n in range(10)]


def monthly_history(may_buyers: int) -> list[CloudEvent]:
    """Ten customers buying 10.00 on the 15th of every month from January to April 2024, `may_buyers` of them in
    May, and one purchase on June 2 that moves the clock past the end of May."""
    events = [
        purchase(f"{c}-{month}", c, datetime(2024, month, 15, tzinfo=UTC), 10)
        for month in range(1, 5)
        for c in CUSTOMERS
    ]
    events += [purchase(f"{c}-5", c, datetime(2024, 5, 15, tzinfo=UTC), 10) for c in CUSTOMERS[:may_buyers]]
    events.append(purchase("clock", "c0", datetime(2024, 6, 2, tzinfo=UTC), 10))
    return events


@pytest.fixture
async def insights(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


async def test_a_drop_raises_one_anomaly_per_kpi_once(insights: Harness) -> None:
    await insights.purchases(*monthly_history(may_buyers=5))
    await insights.figures.refresh_dirty()
    raised = await insights.figures.check_anomalies()
    anomalies = [(subject, data) for kind, subject, data in await insights.emitted() if kind == "kpi.anomaly"]
    assert raised == len(anomalies)
    by_kpi = {data["kpi"]: data for _, data in anomalies}
    # Half the customers bought in May; February to April all ten did. Churn's baseline is zero: no baseline.
    assert sorted(by_kpi) == [
        "active_customers",
        "period_over_period_retention",
        "retention_rate",
        "revenue",
        "revenue_returning",
    ]
    # Only May: June has not ended, and April's baseline would hold January, the first month counted (everyone
    # new only because counting began there).
    assert {data["period_label"] for _, data in anomalies} == {"2024-05"}
    active = by_kpi["active_customers"]
    assert (active["value"], active["baseline"], active["deviation"]) == (5, 10, -0.5)
    assert by_kpi["revenue"]["value"] == 50 and by_kpi["revenue"]["baseline"] == 100
    assert all(subject == data["kpi"] for subject, data in anomalies)

    # Checking again, or after May is recomputed with the same figures, raises nothing new.
    assert await insights.figures.check_anomalies() == 0
    await insights.purchases(purchase("c9-5-late", "c9", datetime(2024, 5, 20, tzinfo=UTC), 0))
    await insights.figures.refresh_dirty()
    assert await insights.figures.check_anomalies() == 0
    assert len([kind for kind, _, _ in await insights.emitted() if kind == "kpi.anomaly"]) == len(anomalies)


async def test_a_deviation_under_the_threshold_raises_nothing(insights: Harness) -> None:
    await insights.purchases(*monthly_history(may_buyers=9))
    await insights.figures.refresh_dirty()
    assert await insights.figures.check_anomalies() == 0  # every KPI of May moved by 10 % or less
    assert await insights.emitted() == []
    async with insights.sessions() as session:
        checked = await session.scalar(
            text("SELECT count(*) FROM insights.period_figures WHERE grain = 'month' AND anomalies_checked")
        )
    assert checked == 5  # January to May; June is still open


async def test_a_constructed_drop_reaches_the_managers_webhook_once(isolated: Isolation) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with WebhookServer() as hook:
        campaign_settings = CampaignSettings(**isolated.settings("campaign", clock_mode="replay").model_dump())
        campaign_settings = campaign_settings.model_copy(
            update={"alert_webhook_url": hook.url, "sender_poll_interval_s": 0.05}
        )
        insights = create_insights(
            insights_settings(isolated.settings("insights", clock_mode="replay", insights_refresh_interval_s=0.2))
        )
        campaign = create_campaign(campaign_settings)
        ingest = create_ingest(ingest_settings(isolated))
        async with (
            running_app(insights) as _insights,
            running_app(campaign) as _campaign,
            running_app(ingest) as ingest_client,
        ):
            events = [
                {
                    "id": e.id,
                    "type": "purchase",
                    "customer_id": e.subject,
                    "time": e.time.isoformat(),
                    "data": {**e.data, "currency": "USD"},
                }
                for e in monthly_history(may_buyers=5)
            ]
            response = await ingest_client.post("/v1/events:batch", json={"events": events}, headers=auth)
            assert response.status_code == 202 and response.json()["rejected"] == 0, response.text

            async def five_alerts() -> bool:
                return len(hook.calls) >= 5

            await eventually(five_alerts, timeout_s=120)
            engine = create_engine(isolated.settings("campaign"))
            try:
                async with engine.connect() as connection:
                    rows = (
                        await connection.execute(
                            text("SELECT customer_id, status FROM campaign.actions WHERE campaign_id = 'kpi-anomalies'")
                        )
                    ).all()
            finally:
                await engine.dispose()
            await asyncio.sleep(1)  # further refreshes and polls of the sender add nothing
        texts = sorted(body["text"] for _, body in hook.calls)
        assert len(hook.calls) == 5
        assert any(t.startswith("active_customers was 5 in 2024-05, 50.0% below its baseline of 10") for t in texts)
        assert sorted(status for _, status in rows) == ["sent"] * 5


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in running(app):
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 20)
        yield client
