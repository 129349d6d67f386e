"""The console over the real services: ingest, profile, scoring, campaign and feedback run in this process on the
isolated database and broker; the console reaches each one through an ASGI transport (its real HTTP API)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.campaign.bootstrap import create_app as create_campaign
from services.console.bootstrap import create_app as create_console
from services.feedback.bootstrap import create_app as create_feedback
from services.ingest.bootstrap import create_app as create_ingest
from services.profile.bootstrap import create_app as create_profile
from services.scoring.bootstrap import create_app as create_scoring
from tests.conftest import ADMIN_KEY, TEST_API_KEYS, Isolation
from tests.html import Page, parse, path_of
from tests.waiting import eventually

MARKETER_KEY = "test-marketer-key"
MANAGER_KEY = "test-manager-key"
KEYS = {
    **TEST_API_KEYS,
    MARKETER_KEY: {"source": "marketing", "scopes": ["campaigns:write"]},
    MANAGER_KEY: {"source": "am-lin", "scopes": ["customers:read", "feedback:write"]},
}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
FACTORIES = {
    "ingest": create_ingest,
    "profile": create_profile,
    "scoring": create_scoring,
    "campaign": create_campaign,
    "feedback": create_feedback,
}


@dataclass
class Platform:
    apps: dict[str, FastAPI]
    console: FastAPI

    def client(self, service: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        app = self.console if service == "console" else self.apps[service]
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers or {}, timeout=30
        )

    @asynccontextmanager
    async def sign_in(self, key: str) -> AsyncIterator[httpx.AsyncClient]:
        """A console client holding the session cookie of `key`, as a browser would after the login form."""
        async with self.client("console") as client:
            page = parse((await client.get("/login")).text)
            form = page.form("/login")
            answer = await client.post(path_of(form.action), data=form.fields(api_key=key))
            assert answer.status_code == 303, answer.text
            yield client


async def _start(stack: AsyncExitStack, app: FastAPI) -> None:
    await stack.enter_async_context(app.router.lifespan_context(app))
    await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 90)


@pytest.fixture
async def platform(isolated: Isolation) -> AsyncIterator[Platform]:
    secrets = {"unsubscribe_token_secret": "console-tests", "api_keys": KEYS}
    apps = {name: factory(isolated.settings(name, **secrets)) for name, factory in FACTORIES.items()}
    # insights is not started: the retention page must say so rather than fail. Its address is a port this fixture
    # holds bound without listening, so nothing else on the machine can answer there (a connection is refused).
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    transports: dict[str, httpx.AsyncBaseTransport] = {name: httpx.ASGITransport(app=app) for name, app in apps.items()}
    console_settings = isolated.settings(
        "console",
        api_keys=KEYS,
        console_insights_url=f"http://127.0.0.1:{closed.getsockname()[1]}",
        console_session_secret="s3cret",
    )
    console = create_console(console_settings, transports=transports)
    async with AsyncExitStack() as stack:
        for app in apps.values():
            await _start(stack, app)
        stack.callback(closed.close)
        await stack.enter_async_context(console.router.lifespan_context(console))
        yield Platform(apps, console)


def ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def purchase(event_id: str, customer: str, amount: float, days_ago: float) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "purchase",
        "customer_id": customer,
        "time": ago(days_ago),
        "data": {
            "order_id": f"o-{event_id}",
            "amount": amount,
            "currency": "USD",
            "items": [{"sku": "s-1", "category": "tea", "quantity": 1, "price": amount}],
        },
    }


def history() -> list[dict[str, Any]]:
    """Two buyers: c-big spent a lot, long ago, and complains; c-small bought a little, lately."""
    events = [purchase(f"big-{n}", "c-big", 400.0, 400 - n * 30) for n in range(8)]
    events += [purchase(f"small-{n}", "c-small", 20.0, 40 - n * 10) for n in range(3)]
    events += [
        {
            "id": "up-big",
            "type": "customer.upserted",
            "customer_id": "c-big",
            "time": ago(300),
            "data": {"name": "Lin Wei", "email": "lin@example.com", "phone": "+8613800000000"},
        },
        {
            "id": "tk-big",
            "type": "ticket.opened",
            "customer_id": "c-big",
            "time": ago(3),
            "data": {"ticket_id": "t-big", "priority": "urgent", "category": "delivery", "text": "Parcel lost"},
        },
        {
            "id": "sv-big",
            "type": "survey.response",
            "customer_id": "c-big",
            "time": ago(2),
            "data": {"nps": 2, "comment": "slow"},
        },
    ]
    return events


async def load_history(platform: Platform) -> None:
    async with platform.client("ingest", ADMIN) as ingest:
        answer = await ingest.post("/v1/events:batch", json={"events": history()})
        assert answer.status_code == 202, answer.text

    async with platform.client("scoring", ADMIN) as scoring, platform.client("feedback", ADMIN) as feedback:

        async def scored() -> bool:
            replies = [await scoring.get(f"/v1/customers/{c}/score") for c in ("c-big", "c-small")]
            if not all(reply.status_code == 200 for reply in replies):
                return False
            big = replies[0].json()
            return big["purchase_count"] == 8 and {"open_complaints", "detractor_nps"} <= {
                reason["code"] for reason in big["reasons"]
            }

        async def ticket_known() -> bool:
            return (await feedback.get("/v1/tickets/t-big")).status_code == 200

        await eventually(scored, timeout_s=60)
        await eventually(ticket_known, timeout_s=30)


def text_of(page: Page) -> str:
    return page.text


async def seed_ab_test(database_url: str, campaign_id: str) -> None:
    """A finished A/B test straight in campaign's tables (assignments and purchases, as its consumers write them):
    holdout 40 customers with 6 conversions, variant a 40 with 14, variant b 40 with 8."""
    from sqlalchemy import insert

    from libs.common.db import create_engine as engine_for
    from libs.common.settings import Settings
    from services.campaign.adapters.tables import assignments, purchases

    start = datetime.now(UTC) - timedelta(days=30)
    rows = [
        (group, f"{group}-{n}", n < converted)
        for group, converted in (("holdout", 6), ("a", 14), ("b", 8))
        for n in range(40)
    ]
    engine = engine_for(Settings(database_url=database_url))
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(assignments),
                [
                    {"campaign_id": campaign_id, "customer_id": c, "variant": v, "assigned_at": start}
                    for v, c, _ in rows
                ],
            )
            await connection.execute(
                insert(purchases),
                [
                    {"customer_id": c, "order_id": f"ab-{c}", "amount": 30, "purchased_at": start + timedelta(days=2)}
                    for _, c, converted in rows
                    if converted
                ],
            )
    finally:
        await engine.dispose()
