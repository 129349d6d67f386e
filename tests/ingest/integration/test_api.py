"""The HTTP API on a real database and broker: outcomes, formats, limits, problems, docs, metrics."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import orjson
from httpx import AsyncClient

from libs.common.events import UPSTREAM_EVENT_TYPES
from services.ingest.adapters.event_log import OPTIMISTIC_MIN_ROWS
from services.ingest.bootstrap import create_app
from services.ingest.domain.examples import structured_example
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, event, ingest_settings, read_topic, recent, start
from tests.problems import assert_problem

CE = {"content-type": "application/cloudevents+json"}
CE_BATCH = {"content-type": "application/cloudevents-batch+json"}


def structured(event_id: str, event_type: str = "login") -> dict[str, Any]:
    return {**structured_example(event_type, event_id), "time": recent()}


async def test_single_events_are_published_once_with_the_keys_source(client: AsyncClient, isolated: Isolation) -> None:
    first = await client.post("/v1/events", json=event("e-1"), headers=SHOP)
    assert (first.status_code, first.json()) == (202, {"id": "e-1", "status": "accepted"})
    again = await client.post("/v1/events", json=event("e-1"), headers=SHOP)
    assert (again.status_code, again.json()) == (200, {"id": "e-1", "status": "duplicate"})
    ce = await client.post("/v1/events", content=orjson.dumps(structured("e-2")), headers={**SHOP, **CE})
    assert (ce.status_code, ce.json()["status"]) == (202, "accepted")

    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=2)
    assert sorted(e.id for e in seen) == ["e-1", "e-2"]
    by_id = {e.id: e for e in seen}
    # ce_source comes from the API key, not from what the caller claims ("shop-eu").
    assert {e.source for e in seen} == {"shop"}
    assert by_id["e-2"].subject == "c-42" and by_id["e-2"].type == "login"
    assert by_id["e-1"].data["schema_version"] == "1" and by_id["e-1"].data["amount"] == 120.5


async def test_batch_answers_each_item_on_its_own(client: AsyncClient, isolated: Isolation) -> None:
    await client.post("/v1/events", json=event("old"), headers=SHOP)
    bad_price = event("bad")
    bad_price["data"]["items"][0]["price"] = -5
    items = [event("b-1"), bad_price, event("b-1"), event("old"), {"id": "x"}, event("b-2", "login")]
    response = await client.post("/v1/events:batch", json={"events": items}, headers=SHOP)
    assert response.status_code == 202
    body = response.json()
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "duplicate",
        "rejected",
        "accepted",
    ]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 2, 2)
    assert body["results"][1]["id"] == "bad"
    assert "data.items[0].price" in [e["field"] for e in body["results"][1]["errors"]]

    ce_batch = [structured("c-1"), structured("c-2", "page_view"), {**structured("c-3"), "specversion": "2.0"}]
    response = await client.post("/v1/events:batch", content=orjson.dumps(ce_batch), headers={**SHOP, **CE_BATCH})
    assert [r["status"] for r in response.json()["results"]] == ["accepted", "accepted", "rejected"]

    nothing_new = await client.post("/v1/events:batch", json={"events": [event("b-1")]}, headers=SHOP)
    assert nothing_new.status_code == 200 and nothing_new.json()["duplicates"] == 1

    too_many = await client.post(
        "/v1/events:batch", json={"events": [event(f"n{i}") for i in range(1001)]}, headers=SHOP
    )
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "events"

    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=5)
    assert sorted(e.id for e in seen) == ["b-1", "b-2", "c-1", "c-2", "old"]


async def test_problems_for_bad_requests(isolated: Isolation) -> None:
    app = create_app(ingest_settings(isolated, ingest_max_event_bytes=4096, max_body_bytes=65536))
    async for client in start(app):
        big = event("big", "ticket.opened", text="x" * 5000)
        oversized = await client.post("/v1/events", json=big, headers=SHOP)
        assert_problem(oversized, 413)

        big_body = orjson.dumps(big)

        async def chunked(body: bytes) -> AsyncIterator[bytes]:
            for start_at in range(0, len(body), 1000):
                yield body[start_at : start_at + 1000]

        no_length = await client.post("/v1/events", content=chunked(big_body), headers=SHOP)
        assert no_length.status_code == 413
        huge_batch = await client.post("/v1/events:batch", json={"events": [big] * 14}, headers=SHOP)
        assert huge_batch.status_code == 413

        malformed = await client.post(
            "/v1/events", content=b'{"id": ', headers={**SHOP, "content-type": "application/json"}
        )
        assert malformed.status_code == 400
        unknown = await client.post("/v1/events", json={**event("u"), "type": "nope"}, headers=SHOP)
        assert_problem(unknown, 422, "type")
        nested = event("n")
        nested["data"]["items"][0]["price"] = "cheap"
        assert (await client.post("/v1/events", json=nested, headers=SHOP)).json()["errors"][0][
            "field"
        ] == "data.items[0].price"
        wrong_type = await client.post("/v1/events", content=b"a,b", headers={**SHOP, "content-type": "text/csv"})
        assert wrong_type.status_code == 415
        assert (await client.post("/v1/events", json=event("a"))).status_code == 401
        reader = {"Authorization": "Bearer test-reader-key"}
        assert (await client.post("/v1/events", json=event("a"), headers=reader)).status_code == 403


async def test_rate_limit_answers_429_with_retry_after(isolated: Isolation) -> None:
    app = create_app(ingest_settings(isolated, ingest_rate_limit_per_s=2, ingest_rate_burst_s=1))
    async for client in start(app):
        statuses = [(await client.post("/v1/events", json=event(f"r{i}"), headers=SHOP)).status_code for i in range(3)]
        assert statuses == [202, 202, 429]
        limited = await client.post("/v1/events", json=event("r9"), headers=SHOP)
        assert limited.headers["retry-after"] == "1"
        assert limited.headers["content-type"] == "application/problem+json"
        # Buckets are per key: another key is not limited by the shop's traffic.
        assert (
            await client.post("/v1/events", json=event("r10"), headers={"Authorization": "Bearer test-admin-key"})
        ).status_code == 202
        await asyncio.sleep(0.6)
        assert (await client.post("/v1/events", json=event("r11"), headers=SHOP)).status_code == 202
        metrics = (await client.get("/metrics")).text
        assert 'retain_ingest_rate_limited_total{source="shop"}' in metrics


async def test_an_id_is_new_again_after_the_dedupe_window(isolated: Isolation) -> None:
    app = create_app(ingest_settings(isolated, ingest_dedupe_window_s=0.5))
    async for client in start(app):
        assert (await client.post("/v1/events", json=event("w"), headers=SHOP)).json()["status"] == "accepted"
        assert (await client.post("/v1/events", json=event("w"), headers=SHOP)).json()["status"] == "duplicate"
        await asyncio.sleep(0.7)
        assert (await client.post("/v1/events", json=event("w"), headers=SHOP)).json()["status"] == "accepted"


async def post_big(client: AsyncClient, ids: range) -> dict[str, Any]:
    events = [event(f"big-{i}") for i in ids]
    answer = await client.post("/v1/events:batch", json={"events": events}, headers=SHOP)
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_large_batches_dedupe_like_small_ones(isolated: Isolation) -> None:
    """From OPTIMISTIC_MIN_ROWS on, a batch is first copied in; a repeated id must send it the careful way."""
    assert OPTIMISTIC_MIN_ROWS <= 100
    app = create_app(ingest_settings(isolated, ingest_dedupe_window_s=2.0))
    async for client in start(app):
        first = await post_big(client, range(100))
        assert (first["accepted"], first["duplicates"]) == (100, 0)
        overlapping = await post_big(client, range(70, 170))
        assert (overlapping["accepted"], overlapping["duplicates"]) == (70, 30)
        assert [r["status"] for r in overlapping["results"]] == ["duplicate"] * 30 + ["accepted"] * 70
        await asyncio.sleep(2.5)
        again = await post_big(client, range(100))  # older than the window: new again, each replacing its old row
        assert (again["accepted"], again["duplicates"]) == (100, 0)

    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=270)
    published = Counter(e.id for e in seen)
    assert published == {f"big-{i}": 2 if i < 100 else 1 for i in range(170)}


async def test_openapi_has_an_example_for_every_type_and_metrics_count_outcomes(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    for media in ("application/json", "application/cloudevents+json"):
        assert set(body[media]["examples"]) == set(UPSTREAM_EVENT_TYPES)
    schemas = spec["components"]["schemas"]
    assert "PurchaseEvent" in schemas and "Purchase" in schemas
    assert "application/cloudevents-batch+json" in spec["paths"]["/v1/events:batch"]["post"]["requestBody"]["content"]

    def counts(text: str) -> dict[str, float]:
        # Metrics are process-wide and other tests post too: compare before and after.
        wanted = {
            "accepted": 'retain_ingest_events_total{outcome="accepted",source="shop",type="purchase"}',
            "duplicate": 'retain_ingest_events_total{outcome="duplicate",source="shop",type="purchase"}',
            "rejected": 'retain_ingest_events_total{outcome="rejected",source="shop",type="invalid"}',
        }
        values = {name: 0.0 for name in wanted}
        for line in text.splitlines():
            for name, prefix in wanted.items():
                if line.startswith(prefix + " "):
                    values[name] = float(line.rsplit(" ", 1)[1])
        return values

    before = counts((await client.get("/metrics")).text)
    await client.post("/v1/events", json=event("m-1"), headers=SHOP)
    await client.post("/v1/events", json=event("m-1"), headers=SHOP)
    await client.post("/v1/events", json={**event("m-2"), "type": "zzz"}, headers=SHOP)
    metrics = (await client.get("/metrics")).text
    after = counts(metrics)
    assert {name: after[name] - before[name] for name in after} == {"accepted": 1, "duplicate": 1, "rejected": 1}
    assert "retain_ingest_publish_seconds_count" in metrics and "retain_ingest_outbox_depth" in metrics
    # The single-event route bypasses FastAPI's routing; its latency is still labelled with its path template.
    latency = 'retain_http_request_duration_seconds_count{method="POST",route="/v1/events",service="ingest",status='
    assert {line.split("status=")[1].split("}")[0] for line in metrics.splitlines() if line.startswith(latency)} >= {
        '"202"',
        '"422"',
    }


async def test_replay_republishes_an_event_time_range(client: AsyncClient, isolated: Isolation) -> None:
    old = {**event("h-1"), "time": "1997-01-01T00:00:00Z"}
    later = {**event("h-2"), "time": "1998-06-01T00:00:00Z"}
    await client.post("/v1/events:batch", json={"events": [old, later]}, headers=SHOP)
    span = {"from": "1996-12-31T00:00:00Z", "to": "1998-01-01T00:00:00Z"}
    assert (await client.post("/v1/replays", json=span, headers=SHOP)).status_code == 403
    admin = {"Authorization": "Bearer test-admin-key"}
    replayed = await client.post("/v1/replays", json=span, headers=admin)
    assert replayed.json() == {"replayed": 1}
    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=3)
    assert sorted(e.id for e in seen) == ["h-1", "h-1", "h-2"]  # consumers dedupe the second h-1 on ce_id
