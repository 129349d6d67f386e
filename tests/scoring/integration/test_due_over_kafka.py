"""Due-time transitions in the whole scoring app on the real broker, with an injected live clock: a purchase comes in
over Kafka, the clock moves on, and the stage change goes out on score-changes stamped with the due time, once."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from libs.common.envelope import format_time
from libs.common.kafka import Publisher, ensure_topics
from libs.common.topics import CUSTOMER_EVENTS, SCORE_CHANGES
from services.scoring.adapters.tables import SCHEMA
from services.scoring.bootstrap import create_app
from services.scoring.domain.due import PAST_BOUNDARY
from services.scoring.settings import ScoringSettings
from tests.conftest import ADMIN_KEY, Isolation, running
from tests.scoring.integration.helpers import purchase
from tests.topics import read_events
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_the_stage_change_goes_out_at_the_due_time(isolated: Isolation) -> None:
    settings = ScoringSettings(**{**isolated.settings(SCHEMA).model_dump(), "scoring_due_interval_s": 0.2})
    await ensure_topics(settings)
    clock = FakeClock(datetime(2031, 5, 1, 12, tzinfo=UTC))
    app = create_app(settings, clock)
    publisher = Publisher(settings)
    await publisher.start()
    bought = clock.now - timedelta(days=40)
    try:
        async with asynccontextmanager(running)(app) as client:
            await publisher.publish(isolated.prefix + CUSTOMER_EVENTS, purchase("b-1", "c-1", bought, 80.0))

            async def stage() -> str | None:
                response = await client.get("/v1/customers/c-1/score", headers=AUTH)
                return response.json()["stage"] if response.status_code == 200 else None

            assert await eventually(stage) == "active"
            clock.now = bought + timedelta(days=91)

            async def at_risk() -> bool:
                return await stage() == "at_risk"

            await eventually(at_risk)
            published = await read_events(settings.kafka_bootstrap, isolated.prefix + SCORE_CHANGES, 3)
            crossings = [
                (event.time, event.data["old"], event.data["new"])
                for event in published
                if event.type == "threshold.crossed" and event.data["kind"] == "stage_changed"
            ]
            due = bought + timedelta(days=90) + PAST_BOUNDARY
            assert crossings == [(due, "active", "at_risk")]
            assert len({event.id for event in published}) == len(published)
            history = (await client.get("/v1/customers/c-1/score/history", headers=AUTH)).json()["items"]
            assert [(item["trigger"], item["at"], item["stage"]) for item in history] == [
                ("due", format_time(due), "at_risk"),
                ("event", format_time(bought), "active"),
            ]
    finally:
        await publisher.stop()
