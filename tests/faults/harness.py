"""The platform as separate processes, a known stream of events, and the exact state every service must reach."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from retain_cli.embedded import free_port
from retain_cli.supervisor import SERVICES, Supervisor
from tests.conftest import ADMIN_KEY
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
# Few buyers: scoring grades by absolute spend (high from 1000), so the truth below is exact.
SMALL_BASE = {"RETAIN_SCORING_MIN_BUYERS_TO_FIT": "1000"}
PURCHASES_PER_CUSTOMER = 4
TOP_TIER_SPEND = 1000.0
SETTLE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Customer:
    id: str
    amounts: tuple[float, ...]

    @property
    def spend(self) -> float:
        return sum(self.amounts)

    @property
    def points(self) -> int:
        return sum(math.floor(amount) for amount in self.amounts)

    @property
    def crosses_top_tier(self) -> bool:
        return self.spend >= TOP_TIER_SPEND


def customers(count: int, run: str) -> list[Customer]:
    """Every other customer ends in the top tier (one coupon); the others stay below it (none)."""
    result = []
    for n in range(count):
        amounts = (310.0, 290.5, 250.25, 240.0) if n % 2 == 0 else (40.0, 35.5, 20.25, 10.0)
        result.append(Customer(f"{run}-c{n}", amounts))
    return result


def stream(people: list[Customer]) -> list[dict[str, Any]]:
    """Each customer's purchases in time order and a ticket, interleaved across customers as a shop would send them."""
    start = datetime.now(UTC) - timedelta(hours=2)
    events: list[dict[str, Any]] = []
    for step in range(PURCHASES_PER_CUSTOMER):
        for n, person in enumerate(people):
            at = start + timedelta(minutes=10 * step, seconds=n)
            amount = person.amounts[step]
            events.append(
                {
                    "id": f"{person.id}-p{step}",
                    "type": "purchase",
                    "customer_id": person.id,
                    "time": at.isoformat(),
                    "data": {
                        "order_id": f"{person.id}-o{step}",
                        "amount": amount,
                        "currency": "USD",
                        "items": [{"sku": "s-1", "category": "books", "quantity": 1, "price": amount}],
                    },
                }
            )
    for n, person in enumerate(people):
        events.append(
            {
                "id": f"{person.id}-t",
                "type": "ticket.opened",
                "customer_id": person.id,
                "time": (start + timedelta(minutes=45, seconds=n)).isoformat(),
                "data": {"ticket_id": f"{person.id}-t", "priority": "normal", "category": "delivery", "text": "late"},
            }
        )
    return events


async def open_accounts(client: httpx.AsyncClient, ingest_url: str, urls: Urls, people: list[Customer]) -> None:
    """Posts every customer's first purchase and waits until scoring has graded it (below the top tier).

    A coupon rewards crossing into the top tier. A first score already in the top tier crosses into it too
    (tests/scoring/integration/test_tier_crossing_once.py), so this is not needed for one coupon per crossing; it
    gives every fault a known state to start from: every customer graded, the rest of the stream in flight.
    """
    await post_until_accepted(client, ingest_url, stream(people)[: len(people)])

    async def graded() -> bool:
        answers = await asyncio.gather(
            *(client.get(f"{urls.scoring}/v1/customers/{person.id}/score") for person in people)
        )
        return all(
            answer.status_code == 200 and round(float(answer.json()["total_spend"]), 2) == person.amounts[0]
            for person, answer in zip(people, answers, strict=True)
        )

    await eventually(graded, timeout_s=SETTLE_TIMEOUT_S)


def after_opening(people: list[Customer]) -> list[dict[str, Any]]:
    """The stream once every first purchase is in."""
    return stream(people)[len(people) :]


def chunks(events: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    size = math.ceil(len(events) / parts)
    return [events[i : i + size] for i in range(0, len(events), size)]


async def post_until_accepted(client: httpx.AsyncClient, ingest_url: str, events: list[dict[str, Any]]) -> None:
    """A 202 means accepted (duplicates included); anything else, or no answer, is retried as a shop would."""
    for attempt in range(600):
        try:
            response = await client.post(f"{ingest_url}/v1/events:batch", json={"events": events})
            if response.status_code == 202:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2 if attempt < 50 else 1.0)
    raise AssertionError("ingest never accepted the batch")


@dataclass
class Urls:
    profile: str
    scoring: str
    campaign: str
    feedback: str


def urls_of(supervisor: Supervisor) -> Urls:
    return Urls(*(supervisor.url(name) for name in ("profile", "scoring", "campaign", "feedback")))


async def state_of(client: httpx.AsyncClient, urls: Urls, person: Customer) -> dict[str, Any]:
    """What each service says about one customer, reduced to what the truth fixes."""
    profile = await client.get(f"{urls.profile}/v1/customers/{person.id}")
    score = await client.get(f"{urls.scoring}/v1/customers/{person.id}/score")
    loyalty = await client.get(f"{urls.campaign}/v1/customers/{person.id}/loyalty")
    actions = await client.get(f"{urls.campaign}/v1/customers/{person.id}/actions")
    tickets = await client.get(f"{urls.feedback}/v1/tickets", params={"customer_id": person.id})
    state: dict[str, Any] = {}
    if profile.status_code == 200:
        orders = profile.json()["orders"]
        state["profile"] = (orders["count"], round(float(orders["total_spend"]), 2))
    if score.status_code == 200:
        state["scoring"] = (round(float(score.json()["total_spend"]), 2), score.json()["tier"])
    if loyalty.status_code == 200:
        state["loyalty"] = loyalty.json()["points"]
    if actions.status_code == 200:
        state["coupons"] = sum(1 for item in actions.json()["items"] if item["kind"] == "coupon")
    if tickets.status_code == 200:
        state["tickets"] = len(tickets.json()["items"])
    return state


def truth_of(person: Customer) -> dict[str, Any]:
    return {
        "profile": (PURCHASES_PER_CUSTOMER, round(person.spend, 2)),
        "scoring": (round(person.spend, 2), "high" if person.crosses_top_tier else "low"),
        "loyalty": person.points,
        "coupons": 1 if person.crosses_top_tier else 0,
        "tickets": 1,
    }


async def wrong_customers(client: httpx.AsyncClient, urls: Urls, people: list[Customer]) -> dict[str, Any]:
    states = await asyncio.gather(*(state_of(client, urls, person) for person in people))
    return {
        person.id: {"seen": state, "truth": truth_of(person)}
        for person, state in zip(people, states, strict=True)
        if state != truth_of(person)
    }


async def assert_exact(client: httpx.AsyncClient, urls: Urls, people: list[Customer]) -> None:
    """Every service reaches the truth, and stays there: a second coupon or count would show after settling."""

    async def all_exact() -> bool:
        try:
            return not await wrong_customers(client, urls, people)
        except httpx.HTTPError:
            return False

    try:
        await eventually(all_exact, timeout_s=SETTLE_TIMEOUT_S)
    except AssertionError:
        wrong = await wrong_customers(client, urls, people)
        raise AssertionError(f"{len(wrong)} of {len(people)} customers wrong, e.g. {list(wrong.items())[:3]}") from None
    await asyncio.sleep(2.0)
    wrong = await wrong_customers(client, urls, people)
    assert not wrong, f"changed after settling: {list(wrong.items())[:3]}"


@asynccontextmanager
async def supervised(env: dict[str, str], log_dir: Path) -> AsyncIterator[Supervisor]:
    """All services as processes under the real supervisor, restarted when they crash (as `retain run` does)."""
    supervisor = Supervisor(env={**env, **SMALL_BASE}, ports={name: free_port() for name in SERVICES}, log_dir=log_dir)
    supervisor.start_all()

    async def keep_watching() -> None:
        while True:
            supervisor.watch()
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(keep_watching())
    try:
        ready = await supervisor.wait_ready(120)
        assert all(ready.values()), f"not ready: {ready}; logs in {log_dir}"
        yield supervisor
    finally:
        watcher.cancel()
        with suppress(asyncio.CancelledError):
            await watcher
        supervisor.hurry.set()
        supervisor.stopping = True
        supervisor.stop(SERVICES, timeout_s=10)
