"""Ingest fixtures: the app in-process on the isolated database and topic prefix, and a topic reader."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from libs.common.envelope import CloudEvent
from libs.common.topics import CUSTOMER_EVENTS
from services.ingest.bootstrap import create_app
from services.ingest.domain.examples import EXAMPLE_DATA
from services.ingest.settings import IngestSettings
from tests.conftest import Isolation, running
from tests.topics import read_events

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
    """Every record on `<prefix>customer-events` (see tests.topics.read_events)."""
    return await read_events(bootstrap, prefix + CUSTOMER_EVENTS, expect, timeout_s)
