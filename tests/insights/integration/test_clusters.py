"""Clusters refitted from insights' own tables and published as segments (`segments.changed`), once per change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.insights.handlers import consume
from services.insights.handlers.clusters import Clusters
from tests.conftest import Isolation
from tests.insights.integration.harness import Harness, erased, harness, purchase, scored

NOW = datetime(2024, 6, 30, 12, tzinfo=UTC)


@pytest.fixture
async def insights(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


async def load(h: Harness) -> None:
    """Twelve loyal customers (weekly, big spend, high CLV) and eight lapsed ones (one small order long ago)."""
    events = []
    for n in range(12):
        customer = f"loyal-{n:02}"
        events += [
            purchase(f"{customer}-{w}", customer, NOW - timedelta(days=7 * w + n % 3), 80 + n) for w in range(10)
        ]
        await h.deliver(consume.on_scores, scored(f"s-{customer}", customer, NOW - timedelta(days=1), "high", 900 + n))
    for n in range(8):
        customer = f"lapsed-{n}"
        events.append(purchase(f"{customer}-0", customer, NOW - timedelta(days=300 + 5 * n), 15 + n))
        await h.deliver(consume.on_scores, scored(f"s-{customer}", customer, NOW - timedelta(days=200), "low", 3 + n))
    await h.purchases(*events)


async def test_refit_publishes_each_customer_in_their_cluster_once(insights: Harness) -> None:
    await load(insights)
    clusters = Clusters(insights.settings, insights.sessions, insights.figures.outbox)
    result = await clusters.refit()
    assert (result["k"], result["customers"], result["changed"]) == (2, 20, 20)
    described = await clusters.described()
    loyal, lapsed = described["clusters"]
    assert (loyal["segment"], loyal["customers"], lapsed["segment"], lapsed["customers"]) == (
        "cluster-1",
        12,
        "cluster-2",
        8,
    )
    assert loyal["description"].startswith("recent buyers, buying often, high spend, high expected value")
    assert loyal["centre"]["clv"] == pytest.approx(905.5, rel=0.01)
    changes = {s: d for kind, s, d in await insights.emitted() if kind == "segments.changed"}
    assert changes["loyal-00"]["segments_entered"] == ["cluster-1"] and changes["loyal-00"]["segments_left"] == []
    assert changes["lapsed-0"]["segments_entered"] == ["cluster-2"]

    # Nothing moved: a refit publishes nothing.
    assert (await clusters.refit())["changed"] == 0
    assert len([e for e in await insights.emitted() if e[0] == "segments.changed"]) == 20

    # A lapsed customer comes back as a loyal one: they leave cluster-2 for cluster-1, and only they are published.
    comeback = [purchase(f"back-{w}", "lapsed-0", NOW - timedelta(days=7 * w), 90) for w in range(10)]
    await insights.purchases(*comeback)
    await insights.deliver(consume.on_scores, scored("s-back", "lapsed-0", NOW, "high", 910))
    assert (await clusters.refit())["changed"] == 1
    last = [(s, d) for kind, s, d in await insights.emitted() if kind == "segments.changed"][-1]
    assert last == (
        "lapsed-0",
        {"segments_entered": ["cluster-1"], "segments_left": ["cluster-2"], "fit_id": last[1]["fit_id"]},
    )


async def test_an_erased_customer_is_in_no_cluster(insights: Harness) -> None:
    await load(insights)
    clusters = Clusters(insights.settings, insights.sessions, insights.figures.outbox)
    await clusters.refit()
    await insights.deliver(consume.on_profile_changes, erased("e1", "loyal-03", NOW + timedelta(hours=1)))
    result = await clusters.refit()
    assert result["customers"] == 19
    assert sum(c["customers"] for c in (await clusters.described())["clusters"]) == 19
