"""The retention page over a running insights: the KPIs over time as charts and a table, and the cohort matrix as a
heat map, each figure the one insights' API gives; a key without `customers:read` sees none of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from services.console.bootstrap import create_app as create_console
from services.console.domain.charts import heat_colour
from services.ingest.bootstrap import create_app as create_ingest
from services.insights.bootstrap import create_app as create_insights
from tests.conftest import ADMIN_KEY, Isolation
from tests.console.conftest import ADMIN, KEYS, MARKETER_KEY, Platform, _start, purchase
from tests.html import parse
from tests.waiting import eventually

# Six buyers over five months: a cohort two or three months back that partly comes back, and newer buyers.
PURCHASES = [
    ("r1", 130),
    ("r1", 100),
    ("r1", 70),
    ("r1", 40),
    ("r2", 130),
    ("r2", 70),
    ("r3", 130),
    ("r4", 100),
    ("r4", 10),
    ("r5", 40),
    ("r6", 5),
]


@pytest.fixture
async def retention_platform(isolated: Isolation) -> AsyncIterator[Platform]:
    apps = {
        "ingest": create_ingest(isolated.settings("ingest", api_keys=KEYS)),
        "insights": create_insights(isolated.settings("insights", api_keys=KEYS)),
    }
    console = create_console(
        isolated.settings("console", api_keys=KEYS, console_session_secret="s3cret"),
        transports={"insights": httpx.ASGITransport(app=apps["insights"])},
    )
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await _start(stack, app)
        await stack.enter_async_context(console.router.lifespan_context(console))
        yield Platform(apps, console)


async def test_kpis_over_time_and_the_cohort_heat_map_are_insights_figures(retention_platform: Platform) -> None:
    platform = retention_platform
    events = [purchase(f"ret-{n}", customer, 50.0, days) for n, (customer, days) in enumerate(PURCHASES)]
    async with platform.client("ingest", ADMIN) as ingest:
        answer = await ingest.post("/v1/events:batch", json={"events": events})
        assert answer.status_code == 202, answer.text

    async with platform.client("insights", ADMIN) as insights:

        async def counted() -> dict[str, object] | None:
            cohorts = (await insights.get("/v1/cohorts", params={"period": "month"})).json()
            customers = sum(int(c["customers"]) for c in cohorts.get("cohorts", []))
            return cohorts if customers == len({customer for customer, _ in PURCHASES}) else None

        cohorts = await eventually(counted, timeout_s=60)
        kpis = (await insights.get("/v1/kpis", params={"period": "month"})).json()

    async with platform.sign_in(ADMIN_KEY) as console:
        answer = await console.get("/retention", params={"period": "month"})
        assert answer.status_code == 200
        page = parse(answer.text)
    charts = [m["aria-label"] for m in page.marked if m.get("data-chart") == "line"]
    assert {"Retention rate", "Churn rate", "Revenue"} <= set(charts)
    shown_periods = [m["data-period"] for m in page.marked if m.get("tag") == "tr" and "data-period" in m]
    assert shown_periods == [row["period"] for row in kpis["rows"]]

    shares = [m for m in page.marked if m.get("tag") == "td" and "data-share" in m]
    expected = [cell for cohort in cohorts["cohorts"] for cell in cohort["periods"]]
    assert len(shares) == len(expected) and expected
    for shown, cell in zip(shares, expected, strict=True):
        assert str(shown["data-share"]) == str(cell["share_active"])
        assert f"background: {heat_colour(cell['share_active'])}" in str(shown["style"])
    # Everyone is active in the period of their first purchase: a cohort's first cell is full.
    bought = [cohort for cohort in cohorts["cohorts"] if cohort["customers"]]
    assert bought and all(cohort["periods"][0]["share_active"] == 1 for cohort in bought)
    # Three first bought 130 days ago; two of them came back: some later cell of theirs is neither empty nor full.
    assert any(0 < (cell["share_active"] or 0) < 1 for cohort in bought for cell in cohort["periods"][1:])

    async with platform.sign_in(MARKETER_KEY) as marketer:
        refused = await marketer.get("/retention", params={"period": "month"})
    assert refused.status_code == 403
    assert not [m for m in parse(refused.text).marked if "data-share" in m or "data-chart" in m]
