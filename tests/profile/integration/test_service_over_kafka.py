"""The whole profile app (migrations, consumer group, inbox, outbox relay) against the real broker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
from aiokafka import AIOKafkaConsumer

from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher, ensure_topics
from libs.common.topics import CUSTOMER_EVENTS, PROFILE_CHANGES
from services.profile.bootstrap import create_app
from tests.conftest import Isolation, running

from .harness import READER


async def test_events_flow_through_the_consumer_to_the_api_and_profile_changes(isolated: Isolation) -> None:
    settings = isolated.settings("profile")
    await ensure_topics(settings)
    publisher = Publisher(settings)
    await publisher.start()
    at = datetime.now(UTC) - timedelta(minutes=5)
    topic = isolated.prefix + CUSTOMER_EVENTS
    events = [
        CloudEvent(
            id=f"k{n}",
            source="test",
            type="purchase",
            subject="c-k",
            time=at + timedelta(seconds=n),
            data={"order_id": f"o{n}", "amount": 10.0, "currency": "USD"},
        )
        for n in range(3)
    ]
    bad = CloudEvent(id="k-bad", source="test", type="login", subject="c-k", time=at, data={"channel": "fax"})
    try:
        await publisher.publish_many([(topic, e) for e in [*events, bad, events[0]]])
        async for client in running(create_app(settings)):
            deadline = asyncio.get_running_loop().time() + 40
            view = None
            while asyncio.get_running_loop().time() < deadline:
                response = await client.get("/v1/customers/c-k", headers=READER)
                if response.status_code == 200 and response.json()["orders"]["count"] == 3:
                    view = response.json()
                    break
                await asyncio.sleep(0.2)
            assert view is not None, "profile never reached 3 orders"
            assert view["orders"]["total_spend"] == 30.0 and view["logins"]["count"] == 0
            # Read while the app runs: its outbox relay publishes profile.updated after the commit.
            counts = await purchase_counts_announced(settings.kafka_bootstrap, isolated.prefix, until=3)
    finally:
        await publisher.stop()
    # Relayed from the outbox; the poison login went to the DLQ instead of blocking the partition.
    assert 3 in counts


async def purchase_counts_announced(bootstrap: str, prefix: str, until: int) -> list[int]:
    reader = AIOKafkaConsumer(
        prefix + PROFILE_CHANGES, bootstrap_servers=bootstrap, group_id=prefix + "reader", auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        counts: list[int] = []
        deadline = asyncio.get_running_loop().time() + 20
        while until not in counts and asyncio.get_running_loop().time() < deadline:
            for records in (await reader.getmany(timeout_ms=500)).values():
                counts += [
                    orjson.loads(r.value)["metrics"]["purchase_count"]
                    for r in records
                    if dict(r.headers)["ce_type"] == b"profile.updated"
                ]
        return counts
    finally:
        await reader.stop()
