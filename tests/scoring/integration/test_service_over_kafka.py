"""The one test with the whole scoring app on the real broker: consumers, inbox, outbox relay, scheduler."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from libs.common.kafka import Publisher, ensure_topics
from libs.common.runtime import Runtime
from libs.common.topics import CUSTOMER_EVENTS, FEEDBACK_EVENTS, SCORE_CHANGES
from services.scoring.adapters.tables import SCHEMA, messaging
from services.scoring.bootstrap import create_app
from tests.conftest import ADMIN_KEY, Isolation, running
from tests.scoring.integration.helpers import feedback_event, purchase
from tests.topics import read_events
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_redelivered_profile_event_scores_once_and_feedback_rescores(isolated: Isolation) -> None:
    settings = isolated.settings(SCHEMA)
    await ensure_topics(settings)
    app = create_app(settings)
    publisher = Publisher(settings)
    await publisher.start()
    now = datetime.now(UTC) - timedelta(minutes=5)
    bought = [purchase("b-1", "c-1", now - timedelta(days=40), 150.0), purchase("b-2", "c-1", now, 300.0)]
    breach = feedback_event(
        "sla-1",
        "c-1",
        now,
        "sla.breached",
        {
            "ticket_id": "t-1",
            "clock": "first_response",
            "tier": "std",
            "priority": "high",
            "target_s": 60,
            "elapsed_s": 99,
        },
    )
    try:
        async with asynccontextmanager(running)(app) as client:
            # the same event twice (a redelivery after a lost commit looks exactly like this)
            await publisher.publish_many([(isolated.prefix + CUSTOMER_EVENTS, event) for event in bought] * 2)

            async def scored() -> bool:
                response = await client.get("/v1/customers/c-1/score", headers=AUTH)
                return response.status_code == 200 and response.json()["total_spend"] == 450.0

            # two topics are two consumers: wait, so that the breach lands after the purchases
            await eventually(scored)
            await publisher.publish(isolated.prefix + FEEDBACK_EVENTS, breach)

            async def scored_with_breach() -> dict[str, Any] | None:
                response = await client.get("/v1/customers/c-1/score", headers=AUTH)
                body: dict[str, Any] = response.json()
                reasons = {r["code"] for r in body.get("reasons", [])} if response.status_code == 200 else set()
                return body if "sla_breach" in reasons else None

            score = await eventually(scored_with_breach)
            assert (score["tier"], score["stage"], score["total_spend"]) == ("medium", "active", 450.0)
            assert score["churn_risk"] == 0.3

            runtime: Runtime = app.state.runtime
            published = await read_events(settings.kafka_bootstrap, isolated.prefix + SCORE_CHANGES, 2)
            # the breach adds a reason (material) to what the purchases scored; the duplicates added nothing
            changed = [event for event in published if event.type == "score.changed"]
            assert len({event.id for event in published}) == len(published)
            assert Decimal(changed[-1].data["total_spend"]) == 450  # money is a decimal string on the wire
            assert "sla_breach" in {r["code"] for r in changed[-1].data["reasons"]}
            async with runtime.sessions() as session:
                inbox = await session.scalar(select(func.count()).select_from(messaging.inbox))
            assert inbox == 3

            # the scheduler refits once at start-up when no model exists: an empty base is a small base
            models = await eventually(lambda: _models(client), timeout_s=10)
            assert models[0]["small_base"] is True and models[0]["diagnostics"]["trigger"] == "schedule"
    finally:
        await publisher.stop()


async def _models(client: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/models", headers=AUTH)
    items: list[dict[str, Any]] = response.json()["items"]
    return items
