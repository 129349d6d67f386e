"""Score history on a real PostgreSQL: one entry per material change, kept once, paged newest first, erased with
the customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from httpx import ASGITransport
from sqlalchemy import func, select

from libs.common.envelope import CloudEvent
from services.scoring.adapters.tables import due_times, score_history
from services.scoring.bootstrap import create_app
from tests.conftest import Isolation
from tests.problems import assert_problem
from tests.scoring.integration.helpers import Harness, harness, of_type, purchase

READER = {"Authorization": "Bearer test-reader-key"}


@pytest.fixture
async def api(isolated: Isolation) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    async for h in harness(isolated):
        app = create_app(h.settings)
        app.state.scoring = h.service
        app.state.runtime = SimpleNamespace(sessions=h.sessions, outbox=h.outbox)
        async with httpx.AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            yield h, client


async def _rows(h: Harness, customer_id: str, table: object = score_history) -> int:
    async with h.sessions() as session:
        column = score_history.c.customer_id if table is score_history else due_times.c.customer_id
        return int(await session.scalar(select(func.count()).where(column == customer_id)) or 0)


async def test_every_material_change_is_kept_once_and_paged_newest_first(
    api: tuple[Harness, httpx.AsyncClient],
) -> None:
    h, client = api
    now = datetime.now(UTC) - timedelta(hours=1)
    await h.purchases(purchase("p1", "c-1", now - timedelta(minutes=3), 120.0))
    await h.purchases(purchase("p2", "c-1", now - timedelta(minutes=2), 900.0))  # low -> high (small base rule)
    await h.purchases(purchase("p3", "c-1", now - timedelta(minutes=1), 1.0))  # nothing material
    await h.purchases(purchase("p2", "c-1", now - timedelta(minutes=2), 900.0))  # a redelivery: nothing new
    changed = of_type(await h.emitted(), "score.changed")
    assert len(changed) == 2

    body = (await client.get("/v1/customers/c-1/score/history", headers=READER)).json()
    items = body["items"]
    assert [item["changes"] for item in items] == [["tier"], ["first_score"]]
    newest, first = items
    assert (newest["tier"], newest["previous"]["tier"], newest["trigger"]) == ("high", "low", "event")
    assert newest["cause_id"] == "p2" and newest["at"] < datetime.now(UTC).isoformat()
    assert first["previous"] is None and first["tier"] == "low" and first["cause_id"] == "p1"
    assert body["next_cursor"] is None

    paged: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/customers/c-1/score/history", params=params, headers=READER)).json()
        paged += [item["event_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == [item["event_id"] for item in items]


async def test_history_problems(api: tuple[Harness, httpx.AsyncClient]) -> None:
    h, client = api
    await h.purchases(purchase("p1", "c-1", datetime.now(UTC) - timedelta(hours=1), 10.0))
    missing = await client.get("/v1/customers/nobody/score/history", headers=READER)
    assert_problem(missing, 404)
    for params, field in (
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "WzFd"}, "cursor"),
        ({"limit": "0"}, "query.limit"),
    ):
        bad = await client.get("/v1/customers/c-1/score/history", params=params, headers=READER)
        assert_problem(bad, 422, field)
    assert (await client.get("/v1/customers/c-1/score/history")).status_code == 401


async def test_erasure_removes_history_and_due_time(api: tuple[Harness, httpx.AsyncClient]) -> None:
    h, client = api
    now = datetime.now(UTC) - timedelta(hours=1)
    await h.purchases(purchase("p1", "c-1", now, 50.0), purchase("p2", "c-2", now, 50.0))
    assert await _rows(h, "c-1") == 1 and await _rows(h, "c-1", due_times) == 1
    await h.profile(CloudEvent("e1", "retain/profile", "customer.erased", "c-1", now, {"customer_id": "c-1"}))
    assert await _rows(h, "c-1") == 0 and await _rows(h, "c-1", due_times) == 0
    assert (await client.get("/v1/customers/c-1/score/history", headers=READER)).status_code == 404
    assert await _rows(h, "c-2") == 1  # someone else's history stays
