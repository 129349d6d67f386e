"""The CDNOW history posted through ingest in replay mode: insights' KPIs and cohorts for every month from 1997-01
to 1998-06 equal the definitions computed straight from the raw file (tests/insights/integration/cdnow_reference).

The whole CDNOW_master.txt (69,659 purchases) by default, four batches of 1,000 in flight, so purchases also arrive
out of time order; RETAIN_TEST_CDNOW=sample posts CDNOW_sample.txt (6,919 purchases) for a quicker run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from libs.common.db import create_engine
from services.ingest.bootstrap import create_app as create_ingest
from services.insights.bootstrap import create_app as create_insights
from services.insights.settings import insights_settings
from tests.conftest import ADMIN_KEY, Isolation, running
from tests.ingest.conftest import ingest_settings
from tests.insights.integration import cdnow_reference as reference
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
FIRST, LAST = (1997, 1), (1998, 6)


def cdnow_file() -> Path:
    import lifetimes

    name = "CDNOW_sample.txt" if os.environ.get("RETAIN_TEST_CDNOW") == "sample" else "CDNOW_master.txt"
    return Path(lifetimes.__file__).parent / "datasets" / name


def upstream_event(row: reference.Row) -> dict[str, Any]:
    return {
        "id": f"cdnow-{row.line}",
        "type": "purchase",
        "customer_id": row.customer,
        "time": f"{row.day.isoformat()}T00:00:00Z",
        "data": {"order_id": f"cdnow-{row.line}", "amount": str(row.amount), "currency": "USD"},
    }


async def post_all(client: httpx.AsyncClient, rows: list[reference.Row]) -> None:
    batches = [rows[n : n + 1000] for n in range(0, len(rows), 1000)]
    in_flight = asyncio.Semaphore(4)

    async def post(batch: list[reference.Row]) -> None:
        async with in_flight:
            response = await client.post("/v1/events:batch", json={"events": [upstream_event(r) for r in batch]})
            assert response.status_code == 202, response.text
            assert response.json()["rejected"] == 0, response.text

    await asyncio.gather(*(post(batch) for batch in batches))


@pytest.fixture
async def insights_client(isolated: Isolation) -> AsyncIterator[httpx.AsyncClient]:
    settings = insights_settings(isolated.settings("insights", clock_mode="replay", insights_refresh_interval_s=0.5))
    app = create_insights(settings)
    async for client in running(app):
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 20)
        yield client


async def test_cdnow_kpis_and_cohorts_equal_the_definitions_on_the_raw_file(
    isolated: Isolation, insights_client: httpx.AsyncClient
) -> None:
    rows = reference.read(cdnow_file())
    ingest = create_ingest(ingest_settings(isolated, ingest_earliest_event_time="1990-01-01T00:00:00Z"))
    async for client in running(ingest):
        await asyncio.wait_for(ingest.state.runtime.broker_connected.wait(), 20)
        client.headers.update(AUTH)
        await post_all(client, rows)

    engine = create_engine(isolated.settings("insights"))
    try:

        async def counted() -> bool:
            async with engine.connect() as connection:
                stored = await connection.scalar(text("SELECT count(*) FROM insights.purchases"))
            return bool(stored == len(rows))

        await eventually(counted, timeout_s=600)
    finally:
        await engine.dispose()

    insights_client.headers.update(AUTH)
    query = {"period": "month", "from": "1997-01-01", "to": "1998-06-30"}
    answer = (await insights_client.get("/v1/kpis", params=query)).json()
    assert answer["as_of"].startswith("1998-06")  # replay: "now" is the newest purchase, not today
    got = {row["period"]: row for row in answer["rows"]}
    expected = reference.kpis_by_month(rows, FIRST, LAST)
    assert list(got) == list(expected)
    for month, figures in expected.items():
        for kpi, value in figures.items():
            if isinstance(value, Decimal):
                assert got[month][kpi] == pytest.approx(float(value), abs=1e-6), (month, kpi)
            elif isinstance(value, float):
                assert got[month][kpi] == pytest.approx(value, rel=1e-12), (month, kpi)
            else:
                assert got[month][kpi] == value, (month, kpi)

    cohorts = (await insights_client.get("/v1/cohorts", params=query)).json()["cohorts"]
    expected_cohorts = reference.cohorts_by_month(rows, FIRST, LAST)
    assert [c["cohort"] for c in cohorts] == list(expected_cohorts)
    for cohort in cohorts:
        want = expected_cohorts[cohort["cohort"]]
        assert cohort["customers"] == want["customers"]
        assert len(cohort["periods"]) == len(want["cells"])
        for cell, (active, revenue) in zip(cohort["periods"], want["cells"], strict=True):
            size = want["customers"]
            assert cell["active"] == active, (cohort["cohort"], cell["k"])
            assert cell["share_active"] == (pytest.approx(active / size) if size else None)
            assert cell["revenue"] == pytest.approx(float(revenue), abs=1e-6)
