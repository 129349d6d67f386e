"""The churned-customers report on a constructed base where one attribute (region "north") is planted among those
who churned; its announcement once per closed week; the report over HTTP.

Week of Monday 2024-03-04: 40 customers stay active (4 in the north), 10 become churned (8 in the north), one was
churned before the week began (not counted), one churned and came back within it (in the base).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from libs.common.envelope import CloudEvent
from services.insights.bootstrap import create_app
from services.insights.handlers import consume
from services.insights.handlers.churn import ChurnReports
from services.insights.settings import insights_settings
from tests.conftest import Isolation, running
from tests.derived import complete
from tests.insights.integration.harness import Harness, erased, harness, purchase
from tests.problems import assert_problem

READER = {"Authorization": "Bearer test-reader-key"}
WEEK = "2024-03-04"


def at(day: int, month: int = 3) -> datetime:
    return datetime(2024, month, day, 12, tzinfo=UTC)


def score(event_id: str, customer: str, when: datetime, stage: str, clv: str = "100.00") -> CloudEvent:
    reasons = [{"code": "recency", "message": "no purchase for 90 days", "numbers": {}, "contribution": 0.7}]
    return CloudEvent(
        id=event_id,
        source="retain/scoring",
        type="score.changed",
        subject=customer,
        time=when,
        data=complete("score.changed", {"tier": "low", "stage": stage, "clv": clv, "reasons": reasons}),
    )


def profile(customer: str, version: int, region: str, *, login: datetime | None = None) -> CloudEvent:
    metrics: dict[str, Any] = {
        "customer_id": customer,
        "region": region,
        "favourite_category": "books",
        "open_tickets": 0,
        "logins_90d_by_channel": {"app": 2, "web": 1},
        "last_login_at": (login or at(1)).isoformat(),
    }
    return CloudEvent(
        id=f"pu-{customer}-{version}",
        source="retain/profile",
        type="profile.updated",
        subject=customer,
        time=at(1) + timedelta(minutes=version),
        data=complete(
            "profile.updated", {"cause": {"id": "x", "type": "purchase"}, "version": version, "metrics": metrics}
        ),
    )


def base_events() -> tuple[list[CloudEvent], list[CloudEvent]]:
    """(score events, profile events) of the constructed base."""
    scores: list[CloudEvent] = []
    profiles: list[CloudEvent] = []
    for n in range(40):
        customer = f"active-{n:02}"
        scores.append(score(f"s0-{customer}", customer, at(1), "active"))
        profiles.append(profile(customer, 1, "north" if n < 4 else "south"))
    for n in range(10):
        customer = f"lost-{n:02}"
        scores.append(score(f"s0-{customer}", customer, at(1), "active"))
        scores.append(score(f"s1-{customer}", customer, at(6), "churned", clv=f"{100 * (n + 1)}.00"))
        # A late, older profile must not overwrite the newer one (version 2 holds the planted region).
        profiles.append(profile(customer, 2, "north" if n < 8 else "south"))
        profiles.append(profile(customer, 1, "south"))
    scores.append(score("s0-gone", "gone", at(20, 2), "churned", clv="9999.00"))
    scores.append(score("s1-back", "back", at(5), "churned"))
    scores.append(score("s2-back", "back", at(7), "reactivated"))
    return scores, profiles


async def load(h: Harness) -> None:
    scores, profiles = base_events()
    await h.deliver(consume.on_profile_changes, *profiles[::-1])
    await h.deliver(consume.on_scores, *scores)
    await h.purchases(purchase("late", "active-00", at(12), 10))  # the clock: Mar 12


@pytest.fixture
async def insights(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated, insights_churn_min_customers=2):
        yield h


def reports(h: Harness) -> ChurnReports:
    return ChurnReports(h.settings, h.sessions, h.figures.outbox)


async def test_the_planted_region_is_over_represented_among_the_churned(insights: Harness) -> None:
    await load(insights)
    report = await reports(insights).report(insights.settings.insights_churn_report_grain, None)
    assert (report["label"], report["complete"]) == ("2024-W10", True)  # the last closed week as of Mar 12
    assert (report["churned"], report["active_base"]) == (10, 41)  # "back" is in the base, "gone" in neither
    assert report["clv_lost"] == pytest.approx(sum(100 * (n + 1) for n in range(10)))
    regions = {r["value"]: r for r in report["traits"] if r["trait"] == "region"}
    assert (regions["north"]["churned"], regions["north"]["base"]) == (8, 4)
    assert regions["north"]["lift"] == pytest.approx((8 / 10) / (4 / 41))
    assert regions["south"]["lift"] == pytest.approx((2 / 10) / (36 / 41))
    assert report["over_represented"][0]["trait"] == "region"
    assert report["over_represented"][0]["value"] == "north"
    assert all(r["trait"] != "region" or r["value"] != "south" for r in report["over_represented"])
    # Traits the same in both groups have a lift of one and are not called over-represented.
    categories = [r for r in report["traits"] if r["trait"] == "favourite_category"]
    assert [(r["value"], r["lift"]) for r in categories] == [("books", pytest.approx(10 / 10 / (40 / 41)))]
    channels = {r["value"] for r in report["traits"] if r["trait"] == "channel"}
    assert channels == {"app"}

    top = report["top_clv_lost"]
    assert [c["customer_id"] for c in top] == [f"lost-{n:02}" for n in range(9, -1, -1)]
    first = top[0]
    assert first["clv"] == 1000.0 and first["region"] == "south"
    assert first["churned_at"] == at(6)
    assert first["reasons"][0]["code"] == "recency"


async def test_a_counted_report_is_kept_until_a_score_an_erasure_or_its_age_changes_it(insights: Harness) -> None:
    await load(insights)
    grain = insights.settings.insights_churn_report_grain
    first = await reports(insights).report(grain, None)
    again = await reports(insights).report(grain, None)
    assert {k: v for k, v in again.items() if k != "as_of"} == {k: v for k, v in first.items() if k != "as_of"}
    # A newer profile alone does not recount a kept report (traits are those as of the counting)...
    await insights.deliver(consume.on_profile_changes, profile("lost-00", 3, "east"))
    regions = {r["value"] for r in (await reports(insights).report(grain, None))["traits"] if r["trait"] == "region"}
    assert "east" not in regions
    # ...a late score within the week does: lost-00 came back on Mar 8, so ends the week in the base.
    await insights.deliver(consume.on_scores, score("s2-lost-00", "lost-00", at(8), "active"))
    late = await reports(insights).report(grain, None)
    assert (late["churned"], late["active_base"]) == (9, 42)
    # A score after the week's end leaves it alone; an erasure recounts it.
    await insights.deliver(consume.on_profile_changes, erased("e1", "lost-09", at(12)))
    after = await reports(insights).report(grain, None)
    assert after["churned"] == 8 and "lost-09" not in [c["customer_id"] for c in after["top_clv_lost"]]
    # Once older than the configured age, a kept report is counted again (with the newest traits).
    aged = ChurnReports(
        insights.settings.model_copy(update={"insights_churn_report_max_age_s": 0.0}),
        insights.sessions,
        insights.figures.outbox,
    )
    assert (await aged.report(grain, None))["churned"] == 8


async def test_a_week_is_announced_once_and_an_erased_customer_leaves_the_report(insights: Harness) -> None:
    await load(insights)
    assert await reports(insights).announce() == 3  # weeks of Feb 19, Feb 26 and Mar 4 have closed
    assert await reports(insights).announce() == 0
    ready = [data for kind, _, data in await insights.emitted() if kind == "churn.report_ready"]
    assert [(d["period_label"], d["churned"]) for d in ready] == [("2024-W08", 1), ("2024-W09", 0), ("2024-W10", 10)]
    assert ready[-1]["report"] == f"/v1/reports/churned?period=week&at={WEEK}"

    await insights.deliver(consume.on_profile_changes, erased("e1", "lost-09", at(13)))
    report = await reports(insights).report(insights.settings.insights_churn_report_grain, None)
    assert report["churned"] == 9
    assert "lost-09" not in [c["customer_id"] for c in report["top_clv_lost"]]


async def test_the_report_over_http(isolated: Isolation) -> None:
    async for h in harness(isolated):
        await load(h)
    app = create_app(insights_settings(isolated.settings("insights", clock_mode="replay")))
    async for client in running(app):
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 20)
        await _check_http(client)


async def _check_http(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reports/churned", params={"period": "week", "at": WEEK}, headers=READER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["label"], body["churned"], len(body["top_clv_lost"])) == ("2024-W10", 10, 10)
    month = (await client.get("/v1/reports/churned", params={"period": "month", "at": WEEK}, headers=READER)).json()
    assert (month["label"], month["complete"], month["churned"]) == ("2024-03", False, 10)
    bad = await client.get("/v1/reports/churned", params={"at": "2024-02-31"}, headers=READER)
    assert_problem(bad, 422, "query.at")
    assert (await client.get("/v1/reports/churned")).status_code == 401
