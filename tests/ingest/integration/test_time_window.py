"""Event times outside the configured window are refused at the door with a problem naming `time`."""

from __future__ import annotations

from httpx import AsyncClient

from services.ingest.bootstrap import create_app
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, event, ingest_settings, start
from tests.problems import assert_problem


async def test_a_ticket_from_1950_is_refused_not_dead_lettered_downstream(client: AsyncClient) -> None:
    old = {**event("old-ticket", "ticket.opened"), "time": "1950-01-01T00:00:00Z"}
    answer = await client.post("/v1/events", json=old, headers=SHOP)
    assert [error["code"] for error in assert_problem(answer, 422, "time")] == ["past_time"]
    batch = await client.post("/v1/events:batch", json={"events": [old, event("fine")]}, headers=SHOP)
    assert batch.status_code == 202
    assert [(r["status"], (r.get("errors") or [{}])[0].get("field")) for r in batch.json()["results"]] == [
        ("rejected", "time"),
        ("accepted", None),
    ]


async def test_the_window_comes_from_settings(isolated: Isolation) -> None:
    settings = ingest_settings(
        isolated, ingest_earliest_event_time="2020-01-01T00:00:00Z", ingest_max_event_time_ahead_s=0
    )
    async for client in start(create_app(settings)):
        early = {**event("early"), "time": "2019-12-31T23:59:59Z"}
        answer = await client.post("/v1/events", json=early, headers=SHOP)
        assert answer.status_code == 422
        assert "before 2020-01-01T00:00:00Z" in answer.json()["errors"][0]["message"]
        assert (await client.post("/v1/events", json=event("now"), headers=SHOP)).status_code == 202
