"""Insights over HTTP: KPI and cohort queries, problem+json for bad input, scopes, gauges of the current period."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from services.insights.bootstrap import create_app
from services.insights.settings import insights_settings
from tests.conftest import ADMIN_KEY, Isolation, running
from tests.insights.integration.harness import harness, purchase
from tests.problems import assert_problem
from tests.waiting import eventually

READER = {"Authorization": "Bearer test-reader-key"}
SHOP = {"Authorization": "Bearer test-shop-key"}


@pytest.fixture
async def client(isolated: Isolation) -> AsyncIterator[httpx.AsyncClient]:
    async for h in harness(isolated):
        await h.purchases(
            purchase("p1", "a", datetime(2024, 1, 5, tzinfo=UTC), 10),
            purchase("p2", "a", datetime(2024, 2, 5, tzinfo=UTC), 20),
            purchase("p3", "b", datetime(2024, 2, 7, tzinfo=UTC), 5),
        )
    app = create_app(insights_settings(isolated.settings("insights", clock_mode="replay")))
    async for c in running(app):
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 20)
        yield c


async def test_kpis_and_cohorts_over_http(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/kpis", params={"period": "month", "from": "2024-01-01"}, headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["as_of"].startswith("2024-02-07")
    assert [(r["period"], r["active_customers"], r["revenue"]) for r in body["rows"]] == [
        ("2024-01", 1, 10.0),
        ("2024-02", 2, 25.0),
    ]
    default = (await client.get("/v1/kpis", headers=READER)).json()
    assert len(default["rows"]) == 12 and default["rows"][-1]["period"] == "2024-02"
    cohorts = (await client.get("/v1/cohorts", params={"from": "2024-01-01"}, headers=READER)).json()
    assert [(c["cohort"], c["customers"]) for c in cohorts["cohorts"]] == [("2024-01", 1), ("2024-02", 1)]
    anomalies = (await client.get("/v1/anomalies", headers=READER)).json()
    assert anomalies["anomalies"] == []


BAD_QUERIES = [
    ({"period": "year"}, "query.period"),
    ({"from": "2024-13-01"}, "query.from"),
    ({"from": "2024-03-01", "to": "2024-01-01"}, "from"),
    ({"period": "week", "from": "2000-01-01", "to": "2024-01-01"}, "from"),
]


async def test_bad_queries_are_problems_naming_the_field_and_reading_needs_a_scope(client: httpx.AsyncClient) -> None:
    for params, field in BAD_QUERIES:
        for path in ("/v1/kpis", "/v1/cohorts"):
            response = await client.get(path, params=params, headers=READER)
            assert_problem(response, 422, field)
    assert (await client.get("/v1/kpis")).status_code == 401
    assert (await client.get("/v1/cohorts", headers=SHOP)).status_code == 403
    assert (await client.get("/v1/kpis", headers={"Authorization": f"Bearer {ADMIN_KEY}"})).status_code == 200


async def test_gauges_show_the_current_period(client: httpx.AsyncClient) -> None:
    async def exported() -> str | None:
        text = (await client.get("/metrics")).text
        return text if 'retain_kpi{kpi="active_customers",period="month"} 2.0' in text else None

    text = await eventually(exported, timeout_s=30)
    assert 'retain_kpi{kpi="revenue",period="month"} 25.0' in text
