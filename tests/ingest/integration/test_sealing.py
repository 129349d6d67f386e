"""Crypto-shredding through ingest: personal data is sealed before the event log and the topic, consumers open it
with the key service, and erasing the customer makes every copy unreadable."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from libs.common import personal
from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher
from libs.common.personal import KeyClient, MasterKeyWrapper, PersonalData
from libs.common.topics import CUSTOMER_EVENTS, PROFILE_CHANGES
from services.ingest.bootstrap import create_app
from services.ingest.handlers.erasure import on_customer_erased
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, ingest_settings, start
from tests.topics import read_events
from tests.waiting import eventually

MASTER = os.urandom(32)
PAST = datetime.now(UTC) - timedelta(days=1)
PERSONAL = ("Eve Example", "eve@example.com", "4155550100", "1990-04-01", "my flat is at 1 Main St")


def events(customer: str) -> list[dict[str, Any]]:
    at = PAST.isoformat()
    return [
        {
            "id": f"{customer}-u",
            "type": "customer.upserted",
            "customer_id": customer,
            "time": at,
            "data": {
                "name": "Eve Example",
                "email": "eve@example.com",
                "phone": "+14155550100",
                "birthday": "1990-04-01",
            },
        },
        {
            "id": f"{customer}-t",
            "type": "ticket.opened",
            "customer_id": customer,
            "time": at,
            "data": {"ticket_id": "t-1", "text": "my flat is at 1 Main St"},
        },
        {
            "id": f"{customer}-p",
            "type": "purchase",
            "customer_id": customer,
            "time": at,
            "data": {"order_id": "o-1", "amount": 10.0, "currency": "USD"},
        },
    ]


@pytest.fixture
async def app(isolated: Isolation) -> FastAPI:
    return create_app(ingest_settings(isolated, master_key=base64.b64encode(MASTER).decode()))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async for c in start(app):
        yield c


def opener(app: FastAPI, ttl_s: float = 0.0) -> PersonalData:
    """A consumer's view: the key service reached over HTTP (in-process here), the master key from configuration."""
    keys = KeyClient(
        "http://ingest", personal.credential_for(MASTER), MasterKeyWrapper(MASTER), ttl_s, ASGITransport(app=app)
    )
    return PersonalData(keys)


def readable(text: str) -> list[str]:
    return [value for value in PERSONAL if value in text]


async def logged(app: FastAPI, customer: str) -> list[CloudEvent]:
    async with app.state.ingest.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, type, event_time, data::text FROM ingest.event_log WHERE customer_id = $1", customer
        )
    return [CloudEvent(r[0], "shop", r[1], customer, r[2], orjson.loads(r[3])) for r in rows]


async def on_topic(isolated: Isolation, customer: str) -> list[CloudEvent]:
    topic = f"{isolated.prefix}{CUSTOMER_EVENTS}"
    seen = await read_events(isolated.stack.broker.bootstrap, topic, expect=3)
    return [event for event in seen if event.subject == customer]


async def test_personal_fields_are_sealed_everywhere_and_open_for_consumers_until_the_erasure(
    app: FastAPI, client: AsyncClient, isolated: Isolation
) -> None:
    answer = await client.post("/v1/events:batch", json={"events": events("c-1")}, headers=SHOP)
    assert answer.status_code == 202, answer.text

    published = await on_topic(isolated, "c-1")
    stored = await logged(app, "c-1")
    assert len(published) == len(stored) == 3
    for copy in (*published, *stored):
        assert readable(repr(copy.data)) == []
    upsert = next(event for event in published if event.type == "customer.upserted")
    assert upsert.data["sealed"]["index"]["email"] == personal.blind_index(
        personal.derived_secret(MASTER, personal.BLIND_INDEX_PURPOSE), "email", "EVE@example.com"
    )

    # A consumer opens them with the key it fetched; what it sees is what was posted.
    consumer = opener(app)
    await consumer.open_events(published)
    by_type = {event.type: event.data for event in published}
    assert by_type["customer.upserted"] == {
        "schema_version": "1",
        "name": "Eve Example",
        "email": "eve@example.com",
        "phone": "+14155550100",
        "birthday": "1990-04-01",
    }
    assert by_type["ticket.opened"]["text"] == "my flat is at 1 Main St"
    assert by_type["purchase"]["amount"] == 10.0

    # The key service answers only services holding the master key.
    assert (await client.get("/v1/keys/c-1", headers={"Authorization": "Bearer test-admin-key"})).status_code == 401
    assert (await client.get("/v1/keys/c-1")).status_code == 401

    caching = opener(app, ttl_s=60)  # a consumer that remembers the key from before the erasure
    assert await caching.keys.key("c-1") is not None
    backup = await logged(app, "c-1")  # a copy taken before the erasure, as a database backup would hold it
    publisher = Publisher(isolated.settings("profile"))
    await publisher.start()
    try:
        erasure = CloudEvent(
            "erased-c-1", "retain/profile", "customer.erased", "c-1", datetime.now(UTC), {"customer_id": "c-1"}
        )
        await publisher.publish(publisher.topic(PROFILE_CHANGES), erasure)
    finally:
        await publisher.stop()

    async def key_destroyed() -> bool:
        async with app.state.ingest.pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT count(*) FROM ingest.customer_keys WHERE customer_id = 'c-1'") == 0)

    await eventually(key_destroyed, timeout_s=30)
    credential = {"Authorization": f"Bearer {personal.credential_for(MASTER)}"}
    assert (await client.get("/v1/keys/c-1", headers=credential)).status_code == 404

    # Every copy, read back from the topic, the event log (whatever the scrub left) and the backup, opens to
    # nothing personal: the key is gone.
    after = opener(app)
    copies = [*await on_topic(isolated, "c-1"), *await logged(app, "c-1"), *backup]
    await after.open_events(copies)
    assert copies
    for copy in copies:
        assert readable(repr(copy.data)) == [], copy

    # The customer comes back: a new key; a consumer still holding the old one asks again and opens the new event.
    comeback = {**events("c-1")[0], "id": "c-1-back", "time": datetime.now(UTC).isoformat()}
    assert (await client.post("/v1/events", json=comeback, headers=SHOP)).json()["status"] == "accepted"
    [back] = [event for event in await logged(app, "c-1") if event.id == "c-1-back"]
    await asyncio.sleep(personal.REFRESH_AFTER_S)
    await caching.open_events([back])
    assert back.data["email"] == "eve@example.com"
    for opened in (consumer, after, caching):
        await opened.keys.aclose()


async def test_a_customer_keeps_one_key_and_customers_do_not_share_one(app: FastAPI, client: AsyncClient) -> None:
    for batch in (events("c-a"), events("c-b"), [{**e, "id": e["id"] + "-again"} for e in events("c-a")]):
        assert (await client.post("/v1/events:batch", json={"events": batch}, headers=SHOP)).status_code == 202
    async with app.state.ingest.pool.acquire() as conn:
        rows = await conn.fetch("SELECT customer_id, key_id, wrapped_key FROM ingest.customer_keys")
    assert sorted(row[0] for row in rows) == ["c-a", "c-b"]
    assert len({row[1] for row in rows}) == 2
    wrapper = MasterKeyWrapper(MASTER)
    assert len({wrapper.unwrap(bytes(row[2]), row[0]) for row in rows}) == 2
    logged_a = await logged(app, "c-a")
    assert {event.data["sealed"]["key_id"] for event in logged_a if "sealed" in event.data} == {
        next(row[1] for row in rows if row[0] == "c-a")
    }


async def test_with_encryption_off_nothing_is_sealed(isolated: Isolation) -> None:
    settings = ingest_settings(isolated, master_key=base64.b64encode(MASTER).decode(), personal_data_encryption=False)
    app = create_app(settings)
    async for client in start(app):
        assert (
            await client.post("/v1/events:batch", json={"events": events("c-off")}, headers=SHOP)
        ).status_code == 202
        stored = await logged(app, "c-off")
        assert any("eve@example.com" in repr(event.data) for event in stored)


async def test_a_first_personal_event_racing_an_erasure_leaves_no_key_behind(app: FastAPI, client: AsyncClient) -> None:
    """The accept that would create the customer's first key and the erasure that destroys keys meet at the erasure
    gate: an erasure not yet committed holds the accept back, which then finds the record and keeps nothing; an
    accept committed first has its new key destroyed by the erasure that follows."""
    runtime = app.state.runtime
    erasures = {
        customer: CloudEvent(
            f"erased-{customer}",
            "retain/profile",
            "customer.erased",
            customer,
            datetime.now(UTC),
            {"customer_id": customer},
        )
        for customer in ("c-race", "c-first")
    }

    async def keys_of(customer: str) -> int:
        async with app.state.ingest.pool.acquire() as conn:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM ingest.customer_keys WHERE customer_id = $1", customer
            )
            return count

    async with runtime.sessions() as session, session.begin():
        await on_customer_erased(HandlerContext(session, runtime.outbox), [erasures["c-race"]])
        post = asyncio.create_task(client.post("/v1/events", json=events("c-race")[0], headers=SHOP))
        await asyncio.sleep(0.5)
        assert not post.done()  # waits at the gate for the erasure to commit
    assert (await post).json()["status"] == "erased"
    assert await keys_of("c-race") == 0

    accepted = await client.post("/v1/events", json=events("c-first")[0], headers=SHOP)
    assert accepted.json()["status"] == "accepted"
    assert await keys_of("c-first") == 1
    async with runtime.sessions() as session, session.begin():
        await on_customer_erased(HandlerContext(session, runtime.outbox), [erasures["c-first"]])
    assert await keys_of("c-first") == 0
    consumer = opener(app)
    copies = await logged(app, "c-first")  # unless the scrub came first: then nothing is left to read at all
    await consumer.open_events(copies)
    assert all(readable(repr(copy.data)) == [] for copy in copies)
    await consumer.keys.aclose()
