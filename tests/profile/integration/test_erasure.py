"""Erasure is final in profile: nothing from before it comes back, whatever the order, and a racing batch loses."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from tests.conftest import Isolation

from .harness import AUTH, READER, Harness, event, harness

_people = itertools.count()
T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
async def h(isolated: Isolation) -> AsyncIterator[Harness]:
    async for value in harness(isolated):
        yield value


def life(person: str) -> list[CloudEvent]:
    """One person under two ids (a shop's and an ERP's, joined by email), all long before the erasure."""
    shop, erp = f"{person}-shop", f"{person}-erp"
    email = f"{person}@example.com"
    at = [T0 + timedelta(days=n) for n in range(8)]
    return [
        event(f"{person}-1", "customer.upserted", shop, at[0], email=email, name="Eve", phone="+14155550100"),
        event(f"{person}-2", "purchase", shop, at[1], order_id=f"o-{person}", amount=30.0, currency="USD"),
        event(f"{person}-3", "customer.upserted", erp, at[2], email=email, birthday="1990-02-03"),
        event(f"{person}-4", "login", erp, at[3], channel="web"),
        event(f"{person}-5", "ticket.opened", shop, at[4], ticket_id=f"t-{person}", priority="low"),
        event(f"{person}-6", "consent.changed", erp, at[5], channel="email", granted=True),
        event(f"{person}-7", "purchase", erp, at[6], order_id=f"o2-{person}", amount=12.5, currency="USD"),
    ]


async def held(h: Harness, ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with h.runtime.sessions() as session:
        for table in ("customers", "timeline", "segment_members"):
            n = await session.scalar(
                text(f"SELECT count(*) FROM profile.{table} WHERE customer_id = ANY(CAST(:ids AS text[]))"),
                {"ids": ids},
            )
            if n:
                counts[table] = int(n)
        for customer_id in ids:
            if (await h.client.get(f"/v1/customers/{customer_id}", headers=READER)).status_code != 404:
                counts[f"api:{customer_id}"] = 1
    return counts


async def test_events_from_before_an_erasure_bring_nobody_back_in_any_order(h: Harness) -> None:
    loop = asyncio.get_running_loop()

    async def run(order: list[int], cut: int, batch: int, replayed_as_new: bool) -> dict[str, int]:
        person = f"p{next(_people)}"
        events = life(person)
        arrival = [events[i] for i in order]
        before, after = arrival[:cut], arrival[cut:]
        for start in range(0, len(before), batch):
            await h.deliver(*before[start : start + batch])
        erased = await h.client.delete(f"/v1/customers/{before[0].subject}", headers=AUTH)
        assert erased.status_code == 200, erased.text
        # The ids profile knew to be this person when erasing (an id not yet joined is someone else to it).
        erased_ids: list[str] = erased.json()["erased_ids"]
        # What arrives after: the rest in flight, then the whole history again (a replay re-sends the same ids; a
        # backfill from another system brings the same facts under new ids).
        again = [
            CloudEvent(f"again-{e.id}" if replayed_as_new else e.id, e.source, e.type, e.subject, e.time, e.data)
            for e in arrival
        ]
        for start in range(0, len(after), batch):
            await h.deliver(*after[start : start + batch])
        await h.deliver(*again)
        return await held(h, erased_ids)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        order=st.permutations(list(range(7))),
        cut=st.integers(1, 7),
        batch=st.integers(1, 4),
        replayed_as_new=st.booleans(),
    )
    def nobody_comes_back(order: list[int], cut: int, batch: int, replayed_as_new: bool) -> None:
        left = asyncio.run_coroutine_threadsafe(run(order, cut, batch, replayed_as_new), loop).result(60)
        assert left == {}, (order, cut, batch, left)

    await asyncio.to_thread(nobody_comes_back)


async def test_a_batch_in_flight_when_the_erasure_runs_is_erased_with_the_rest(h: Harness) -> None:
    """A brand-new customer's first events are being applied while the erasure request comes in: no profile row
    exists yet for the erasure to lock, so only the erasure gate orders the two."""
    first = [
        event("r-1", "customer.upserted", "c-race", T0, email="race@example.com", name="Rae"),
        event("r-2", "purchase", "c-race", T0 + timedelta(hours=1), order_id="o-r", amount=5.0, currency="USD"),
    ]
    async with h.runtime.sessions() as in_flight, in_flight.begin():
        await h.consumer(HandlerContext(in_flight, h.runtime.outbox), first)
        erasing = asyncio.create_task(h.client.delete("/v1/customers/c-race", headers=AUTH))
        await asyncio.sleep(0.5)
        assert not erasing.done(), "the erasure must wait for the batch in flight"
    erased: Any = await asyncio.wait_for(erasing, 10)
    assert erased.status_code == 200 and erased.json()["profile_found"] is True
    assert await held(h, ["c-race"]) == {}

    # The other way round: the erasure commits first, the batch that was queued behind it reads its record.
    await h.deliver(*[CloudEvent(f"b-{e.id}", e.source, e.type, e.subject, e.time, e.data) for e in first])
    assert await held(h, ["c-race"]) == {}
