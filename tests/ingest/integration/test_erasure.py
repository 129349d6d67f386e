"""Erasure reaches ingest: the event log loses the customer's past, replays skip it, re-posts of it are refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher
from libs.common.topics import PROFILE_CHANGES
from services.ingest.adapters import erasures, event_log
from services.ingest.adapters.records import EventRecord
from services.ingest.domain.incoming import validate_python
from services.ingest.handlers.accept import accept_events
from services.ingest.handlers.erasure import on_customer_erased
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, read_topic
from tests.waiting import eventually

ADMIN = {"Authorization": "Bearer test-admin-key"}
PAST = datetime(2026, 1, 10, tzinfo=UTC)


def upsert(event_id: str, customer: str, at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "customer.upserted",
        "customer_id": customer,
        "time": at.isoformat(),
        "data": {"name": "Eve Example", "email": f"{customer}@example.com", "phone": "+14155550100"},
    }


def erased(customer: str, at: datetime) -> CloudEvent:
    return CloudEvent(
        f"erased-{customer}", "retain/profile", "customer.erased", customer, at, {"customer_id": customer}
    )


async def logged(app: FastAPI, customer: str) -> list[tuple[str, str]]:
    """(event id, data as text) of the customer's rows in the event log."""
    async with app.state.ingest.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, data::text FROM ingest.event_log WHERE customer_id = $1 ORDER BY event_id", customer
        )
    return [(row[0], row[1]) for row in rows]


async def test_an_erasure_on_the_broker_empties_the_log_and_replays_and_reposts_bring_nothing_back(
    app: FastAPI, client: AsyncClient, isolated: Isolation
) -> None:
    history = [upsert("e-1", "c-gone", PAST), upsert("e-2", "c-gone", PAST + timedelta(days=1))]
    history.append({**upsert("k-1", "c-kept", PAST), "data": {"name": "Kay"}})
    assert (await client.post("/v1/events:batch", json={"events": history}, headers=SHOP)).status_code == 202

    erased_at = datetime.now(UTC)
    publisher = Publisher(isolated.settings("profile"))
    await publisher.start()
    try:
        await publisher.publish(publisher.topic(PROFILE_CHANGES), erased("c-gone", erased_at))
    finally:
        await publisher.stop()

    async def scrubbed() -> bool:
        return not await logged(app, "c-gone")

    await eventually(scrubbed, timeout_s=30)
    assert [event_id for event_id, _ in await logged(app, "c-kept")] == ["k-1"]

    # Posted again (the same ids, or a backfill under new ids): refused as erased, neither kept nor published.
    again = await client.post("/v1/events", json=history[0], headers=SHOP)
    assert (again.status_code, again.json()) == (200, {"id": "e-1", "status": "erased"})
    backfill = [{**event, "id": f"bf-{event['id']}"} for event in history[:2]]
    answer = await client.post("/v1/events:batch", json={"events": backfill}, headers=SHOP)
    assert answer.status_code == 200
    assert (answer.json()["accepted"], answer.json()["duplicates"], answer.json()["erased"]) == (0, 0, 2)
    assert [r["status"] for r in answer.json()["results"]] == ["erased", "erased"]
    assert await logged(app, "c-gone") == []

    # The customer comes back: a newer event is theirs again, with nothing of the past.
    back = upsert("e-3", "c-gone", datetime.now(UTC))
    assert (await client.post("/v1/events", json=back, headers=SHOP)).json()["status"] == "accepted"
    assert [event_id for event_id, _ in await logged(app, "c-gone")] == ["e-3"]

    span = {"from": "2000-01-01T00:00:00Z", "to": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert (await client.post("/v1/replays", json=span, headers=ADMIN)).json() == {"replayed": 2}
    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=6)
    # The original three, the comeback, and the replay of the kept customer and the comeback: no e-1/e-2 again.
    assert sorted(event.id for event in seen) == ["e-1", "e-2", "e-3", "e-3", "k-1", "k-1"]


async def test_an_accept_in_flight_when_the_erasure_comes_is_scrubbed_and_a_later_one_is_refused(
    app: FastAPI, client: AsyncClient
) -> None:
    """`client` runs the app (and its scrubber); the accept and the erasure are driven by hand to interleave."""
    ctx = app.state.ingest
    runtime = app.state.runtime
    in_flight = EventRecord.of(validate_python(upsert("r-1", "c-race", PAST)), "shop")
    async with ctx.pool.acquire() as conn, conn.transaction():
        assert await erasures.erased_at(conn, ["c-race"]) == {}
        assert await event_log.insert_fresh(conn, [in_flight], published=True, dedupe_window_s=60) == {"r-1"}

        async def erase() -> None:
            async with runtime.sessions() as session, session.begin():
                await on_customer_erased(HandlerContext(session, runtime.outbox), [erased("c-race", datetime.now(UTC))])

        erasing = asyncio.create_task(erase())
        await asyncio.sleep(0.5)
        assert not erasing.done(), "recording the erasure must wait for the accept in flight"
    await asyncio.wait_for(erasing, 10)

    async def scrubbed() -> bool:
        return not await logged(app, "c-race")

    await eventually(scrubbed, timeout_s=10)

    # The other way round: the erasure is being recorded, an accept of the customer's past waits and is refused.
    async with runtime.sessions() as session, session.begin():
        await on_customer_erased(HandlerContext(session, runtime.outbox), [erased("c-race-2", datetime.now(UTC))])
        late = asyncio.create_task(accept_events(ctx, [validate_python(upsert("r-2", "c-race-2", PAST))], "shop"))
        await asyncio.sleep(0.5)
        assert not late.done()
    [outcome] = await asyncio.wait_for(late, 10)
    assert (outcome.status, outcome.published) == ("erased", False)
    assert await logged(app, "c-race-2") == []
