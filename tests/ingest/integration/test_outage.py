"""Broker down: events are accepted into the outbox quickly; broker back: each is published exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from httpx import AsyncClient

from libs.common.envelope import CloudEvent
from retain_cli.embedded import free_port, start_broker
from services.ingest.adapters import event_log
from services.ingest.bootstrap import create_app
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, event, ingest_settings, read_topic, start
from tests.waiting import eventually


async def test_outbox_holds_events_while_the_broker_is_down(isolated: Isolation, tmp_path: Path) -> None:
    port = free_port()
    broker = start_broker(port, tmp_path / "broker.log")
    settings = ingest_settings(
        isolated, kafka_bootstrap=broker.bootstrap, ingest_delivery_timeout_s=0.5, ingest_circuit_open_s=0.5
    )
    app = create_app(settings)
    try:
        async for client in start(app):
            ctx = app.state.ingest
            assert (await client.post("/v1/events", json=event("before"), headers=SHOP)).status_code == 202
            broker.stop()

            started = time.monotonic()
            batch = await client.post(
                "/v1/events:batch", json={"events": [event(f"down-{i}") for i in range(10)]}, headers=SHOP
            )
            assert batch.status_code == 202 and batch.json()["accepted"] == 10
            for i in range(10, 20):
                single = await client.post("/v1/events", json=event(f"down-{i}"), headers=SHOP)
                assert single.status_code == 202
            # One delivery timeout at most, then the circuit sends requests straight to the outbox.
            assert time.monotonic() - started < 4
            dup = await client.post("/v1/events", json=event("down-3"), headers=SHOP)
            assert dup.json()["status"] == "duplicate"

            ready = await client.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
            async with ctx.pool.acquire() as conn:
                assert await event_log.unpublished_count(conn) == 20

            broker = start_broker(port, tmp_path / "broker.log")  # same address, empty memory
            deadline = time.monotonic() + 40
            while True:
                async with ctx.pool.acquire() as conn:
                    left = await event_log.unpublished_count(conn)
                if left == 0:
                    break
                assert time.monotonic() < deadline, f"{left} events still in the outbox"
                await asyncio.sleep(0.2)

            # The restarted broker lost "before": ingest re-sends it with the backlog, each event once.
            seen: list[CloudEvent] = await read_topic(broker.bootstrap, isolated.prefix, expect=21)
            assert sorted(e.id for e in seen) == sorted(["before", *(f"down-{i}" for i in range(20))])

            # Ready again once its erasure consumer has rejoined its group on the new broker.
            async def ready_again(client: AsyncClient = client) -> bool:
                return bool((await client.get("/readyz")).json()["status"] == "ready")

            await eventually(ready_again, timeout_s=60)
    finally:
        broker.stop()
