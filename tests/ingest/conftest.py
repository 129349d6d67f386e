"""Ingest fixtures: the app in-process on the isolated database and topic prefix, and a topic reader."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from httpx import AsyncClient

from libs.common.envelope import CloudEvent
from libs.common.topics import CUSTOMER_EVENTS
from services.ingest.bootstrap import create_app
from services.ingest.domain.examples import EXAMPLE_DATA
from services.ingest.settings import IngestSettings
from tests.conftest import Isolation, running

SHOP = {"Authorization": "Bearer test-shop-key"}


def ingest_settings(isolated: Isolation, **overrides: Any) -> IngestSettings:
    return IngestSettings(**{**isolated.settings("ingest").model_dump(), **overrides})


async def start(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async for client in running(app):
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 20)
        yield client


@pytest.fixture
async def app(isolated: Isolation) -> FastAPI:
    return create_app(ingest_settings(isolated))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async for c in start(app):
        yield c


def recent(minutes_ago: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


def event(event_id: str, event_type: str = "purchase", customer: str = "c-1", **data: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "customer_id": customer,
        "time": recent(),
        "data": {**copy.deepcopy(EXAMPLE_DATA[event_type]), **data},
    }


async def read_topic(bootstrap: str, prefix: str, expect: int, timeout_s: float = 10) -> list[CloudEvent]:
    """Every record on `<prefix>customer-events`, read with assign() (no group join: ~5 s saved).

    Waits until at least `expect` records arrived, then a little longer so extra copies would show.
    """
    topic = prefix + CUSTOMER_EVENTS
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not partitions and asyncio.get_running_loop().time() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen: list[CloudEvent] = []
        settle_until: float | None = None
        while asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                seen += [CloudEvent.from_kafka(r.value, r.headers) for r in records]
            now = asyncio.get_running_loop().time()
            if len(seen) >= expect and settle_until is None:
                settle_until = now + 0.5
            if settle_until is not None and now >= settle_until:
                break
        return seen
    finally:
        await consumer.stop()
