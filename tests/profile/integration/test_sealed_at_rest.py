"""Profile keeps no personal data in clear: the document's personal fields are sealed with the customer's key, the
email and phone columns hold blind indexes, `profile.updated` announces contact facts sealed; identity resolution
and search still work through the blind indexes, and destroying the key leaves nothing readable."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from alembic import command
from fastapi import FastAPI
from httpx import ASGITransport
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common import personal
from libs.common.envelope import CloudEvent
from libs.common.migrations import alembic_config
from libs.common.personal import KeyClient, MasterKeyWrapper, PersonalData
from services.ingest.bootstrap import create_app as create_ingest
from services.profile.domain import new_profile
from tests.conftest import Isolation
from tests.ingest.conftest import ingest_settings, start

from .harness import AUTH, MIGRATIONS, READER, Harness, event, harness

MASTER = os.urandom(32)
INDEX_KEY = personal.derived_secret(MASTER, personal.BLIND_INDEX_PURPOSE)
AT = datetime.now(UTC) - timedelta(days=2)
# Whole values only: short digit runs turn up by chance in base64 ciphertexts and hex indexes.
CLEAR = ("Eve Example", "eve@example.com", "Eve@Example.com", "+14155550100", "1990-04-01")


@pytest.fixture
async def key_service(isolated: Isolation) -> AsyncIterator[FastAPI]:
    app = create_ingest(ingest_settings(isolated, master_key=base64.b64encode(MASTER).decode()))
    async for _ in start(app):
        yield app


def personal_data(key_service: FastAPI, ttl_s: float = 60.0) -> PersonalData:
    keys = KeyClient(
        "http://ingest",
        personal.credential_for(MASTER),
        MasterKeyWrapper(MASTER),
        ttl_s,
        ASGITransport(app=key_service),
    )
    return PersonalData(keys, INDEX_KEY)


@pytest.fixture
async def h(isolated: Isolation, key_service: FastAPI) -> AsyncIterator[Harness]:
    async for value in harness(isolated, personal=personal_data(key_service)):
        yield value


def readable(text: str) -> list[str]:
    return [value for value in CLEAR if value in text]


async def stored(h: Harness) -> list[Any]:
    async with h.runtime.engine.connect() as conn:
        result = await conn.exec_driver_sql("SELECT customer_id, state::text, email, phone FROM profile.customers")
        return list(result.all())


async def test_profiles_hold_personal_data_sealed_and_still_match_and_search(h: Harness, key_service: FastAPI) -> None:
    await h.deliver(
        event(
            "u-1", "customer.upserted", "c-eve", AT, name="Eve Example", email="Eve@Example.com", birthday="1990-04-01"
        )
    )
    # Another system's id for the same person, in a later batch: found through the email column's blind index.
    await h.deliver(event("u-2", "customer.upserted", "c-eve-erp", AT, email="eve@example.com", phone="+14155550100"))
    await h.deliver(event("p-1", "purchase", "c-eve-erp", AT, order_id="o-1", amount=10.0, currency="USD"))

    rows = await stored(h)
    assert [row.customer_id for row in rows] == ["c-eve"]
    (row,) = rows
    assert readable(row.state) == [] and readable(repr(row)) == []
    assert row.email == personal.blind_index(INDEX_KEY, "email", "eve@example.com")
    assert row.phone == personal.blind_index(INDEX_KEY, "phone", "+14155550100")

    view = await h.customer("c-eve-erp")
    assert view["customer_id"] == "c-eve"
    assert view["identities"]["email"] == "eve@example.com"
    assert view["identities"]["phone"] == "+14155550100"
    assert view["attributes"] == {**view["attributes"], "name": "Eve Example", "birthday": "1990-04-01"}
    found = (await h.client.get("/v1/customers", params={"email": "EVE@example.com"}, headers=READER)).json()
    assert [(item["customer_id"], item["email"]) for item in found["items"]] == [("c-eve", "eve@example.com")]
    by_phone = (await h.client.get("/v1/customers", params={"phone": "+1 415 555 0100"}, headers=READER)).json()
    assert [item["customer_id"] for item in by_phone["items"]] == ["c-eve"]

    # The announcements in the outbox (and so on the topic) are sealed; a consumer opens them with the key service.
    updates = await h.emitted("profile.updated")
    assert updates and readable(repr(updates)) == []
    assert all(personal.SEALED in data for _, subject, data in updates if data["metrics"].get("email"))
    announced = announcement(updates[-1])
    await personal_data(key_service).open_events([announced])
    assert announced.data["metrics"]["email"] == "eve@example.com"
    assert announced.data["metrics"]["name"] == "Eve Example"

    # A restart (empty caches) reads the sealed document back and keeps applying to it.
    h.consumer.cache.forget(["c-eve"])
    await h.deliver(event("p-2", "purchase", "c-eve", AT, order_id="o-2", amount=5.0, currency="USD"))
    assert (await h.customer("c-eve"))["identities"]["email"] == "eve@example.com"
    assert readable(repr(await stored(h))) == []

    # Key destroyed: no copy opens any more, and nothing fails on it.
    async with key_service.state.ingest.pool.acquire() as conn:
        await conn.execute("DELETE FROM ingest.customer_keys")
    h.runtime.personal = personal_data(key_service, ttl_s=0.0)
    after = await h.customer("c-eve")
    assert after["identities"]["email"] is None and after["attributes"]["name"] is None
    assert after["orders"]["count"] == 2  # behaviour, not personal data, stays
    await personal_data(key_service, ttl_s=0.0).open_events([opened := announcement(updates[-1])])
    assert opened.data["metrics"]["email"] is None


def announcement(row: tuple[str, str, dict[str, Any]]) -> CloudEvent:
    return CloudEvent(
        id="y", source="test", type=row[0], subject=row[1], time=AT, data=orjson.loads(orjson.dumps(row[2]))
    )


async def test_without_a_master_key_profiles_stay_as_they_were(isolated: Isolation) -> None:
    async for h in harness(isolated):
        await h.deliver(event("u-1", "customer.upserted", "c-1", AT, email="Eve@Example.com"))
        (row,) = await stored(h)
        assert row.email == "eve@example.com"
        assert orjson.loads(row.state)["identities"]["email"] == "eve@example.com"


async def test_an_event_sealed_with_a_key_destroyed_since_is_applied_without_its_personal_fields(
    h: Harness, key_service: FastAPI
) -> None:
    """Accepted just before the erasure, consumed after: it opens to nothing personal, is handled once (no retry,
    no dead letter), and brings back neither the erased person's data nor their profile."""
    keys = personal_data(key_service, ttl_s=0.0)
    sealed: dict[str, dict[str, Any]] = {}
    for customer in ("c-late", "c-gone"):
        key = (await keys.keys_for([customer]))[customer]
        clear = {"name": "Eve Example", "email": "eve@example.com", "region": "CA"}
        sealed[customer] = personal.seal_data("customer.upserted", customer, clear, key.key_id, key.data_key, INDEX_KEY)
    await h.deliver(event("p-gone", "purchase", "c-gone", AT, order_id="o-g", amount=3.0, currency="USD"))
    erased = await h.client.delete("/v1/customers/c-gone", headers=AUTH)
    assert erased.status_code in (200, 202, 204), erased.text
    async with key_service.state.ingest.pool.acquire() as conn:
        await conn.execute("DELETE FROM ingest.customer_keys")  # what ingest does on customer.erased

    late = [event(f"u-{c}", "customer.upserted", c, AT, **orjson.loads(orjson.dumps(d))) for c, d in sealed.items()]
    await keys.open_events(late)
    assert [e.data for e in late] == [{"region": "CA"}, {"region": "CA"}]
    for _ in range(2):  # a redelivery changes nothing
        await h.deliver(*late)
    view = await h.customer("c-late")
    assert view["identities"]["email"] is None and view["attributes"]["name"] is None
    assert view["attributes"]["region"] == "CA"
    assert (await h.client.get("/v1/customers/c-gone", headers=READER)).status_code == 404
    assert readable(repr(await stored(h))) == []


async def test_profiles_stored_before_sealing_are_still_found_by_email_after_the_upgrade(
    isolated: Isolation, key_service: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated.settings("profile")
    config = alembic_config(MIGRATIONS, settings.database_url, "profile")
    await asyncio.to_thread(command.upgrade, config, "profile_0006")
    # A profile as stored before: the document and the lookup columns in clear.
    old = new_profile("c-old")
    old.identities.email, old.identities.phone = "eve@example.com", "+14155550100"
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO profile.customers (customer_id, rev, state, email, phone) VALUES ($1, 1, $2, $3, $4)",
                ("c-old", old.model_dump_json(), "eve@example.com", "+14155550100"),
            )
    finally:
        await engine.dispose()
    monkeypatch.setenv("RETAIN_MASTER_KEY", base64.b64encode(MASTER).decode())
    await asyncio.to_thread(command.upgrade, config, "head")
    async for h in harness(isolated, personal=personal_data(key_service)):
        (row,) = await stored(h)
        assert row.email == personal.blind_index(INDEX_KEY, "email", "eve@example.com")
        assert row.phone == personal.blind_index(INDEX_KEY, "phone", "+14155550100")
        # The same person from another system joins the existing profile, which is sealed by this save.
        await h.deliver(event("u-new", "customer.upserted", "c-new", AT, email="eve@example.com", name="Eve Example"))
        (row,) = await stored(h)
        assert row.customer_id == "c-old" and readable(row.state) == []
