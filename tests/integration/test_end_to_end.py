"""All services as separate processes, over HTTP and Kafka, started by the real supervisor."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from retain_cli.embedded import free_port
from retain_cli.supervisor import PROCESSES, Supervisor
from tests.conftest import ADMIN_KEY, Isolation
from tests.problems import assert_problem
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def platform(isolated: Isolation, tmp_path: Any) -> AsyncIterator[Supervisor]:
    supervisor = Supervisor(env=isolated.env(), ports={name: free_port() for name in PROCESSES}, log_dir=tmp_path)
    supervisor.start_all()
    try:
        ready = await supervisor.wait_ready(90)
        assert all(ready.values()), f"not ready: {ready}; logs in {tmp_path}"
        yield supervisor
    finally:
        await supervisor.shutdown(drain_timeout_s=20)
        supervisor.stop(PROCESSES)
        for child in supervisor.children.values():
            assert child.process is not None and child.process.poll() is not None


def purchase(event_id: str, customer: str, amount: float, at: datetime) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "purchase",
        "customer_id": customer,
        "time": at.isoformat(),
        "data": {
            "order_id": f"o-{event_id}",
            "amount": amount,
            "currency": "USD",
            "items": [{"sku": "s-1", "category": "books", "quantity": 1, "price": amount}],
        },
    }


async def test_purchase_flows_to_profile_score_and_exactly_one_coupon(platform: Supervisor) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        ingest = platform.url("ingest")
        first = await client.post(f"{ingest}/v1/events", json=purchase("e2e-1", "c-42", 120.5, now))
        assert first.status_code == 202, first.text
        assert first.json() == {"id": "e2e-1", "status": "accepted"}
        again = await client.post(f"{ingest}/v1/events", json=purchase("e2e-1", "c-42", 120.5, now))
        assert again.json()["status"] == "duplicate"

        async def profile() -> dict[str, Any] | None:
            response = await client.get(f"{platform.url('profile')}/v1/customers/c-42")
            return response.json() if response.status_code == 200 else None

        seen = await eventually(profile)
        assert seen["orders"]["count"] == 1
        assert seen["orders"]["total_spend"] == pytest.approx(120.5)

        async def score() -> dict[str, Any] | None:
            response = await client.get(f"{platform.url('scoring')}/v1/customers/c-42/score")
            return response.json() if response.status_code == 200 else None

        assert (await eventually(score))["tier"] == "low"

        # Two big purchases push the customer into the top tier; the second one keeps them there.
        for n, amount in ((2, 900.0), (3, 500.0)):
            response = await client.post(f"{ingest}/v1/events", json=purchase(f"e2e-{n}", "c-42", amount, now))
            assert response.status_code == 202

        async def top_tier_score() -> dict[str, Any] | None:
            answer = await score()
            return answer if answer and answer["total_spend"] == pytest.approx(1520.5) else None

        assert (await eventually(top_tier_score))["tier"] == "high"

        async def coupons() -> list[dict[str, Any]]:
            response = await client.get(f"{platform.url('campaign')}/v1/customers/c-42/actions")
            return [item for item in response.json()["items"] if item["kind"] == "coupon"]

        issued = await eventually(coupons)
        await asyncio.sleep(1.0)  # time for any (wrong) second coupon to appear
        assert len(await coupons()) == 1
        assert issued[0]["details"]["code"].startswith("RTN-")

        ticket = {
            "id": "e2e-t1",
            "type": "ticket.opened",
            "customer_id": "c-42",
            "time": now.isoformat(),
            "data": {"ticket_id": "t-1", "priority": "urgent", "category": "delivery", "text": "Where is my parcel?"},
        }
        assert (await client.post(f"{ingest}/v1/events", json=ticket)).status_code == 202

        async def ticket_view() -> dict[str, Any] | None:
            response = await client.get(f"{platform.url('feedback')}/v1/tickets/t-1")
            return response.json() if response.status_code == 200 else None

        seen_ticket = await eventually(ticket_view)
        assert seen_ticket["customer_id"] == "c-42"
        assert seen_ticket["priority"] == "urgent"

        metrics = (await client.get(f"{platform.url('profile')}/metrics")).text
        processed = re.search(
            # prometheus_client writes labels in alphabetical order.
            r'retain_events_consumed_total\{outcome="processed",service="profile",'
            r'topic="[^"]*customer-events",type="purchase"\} ([\d.]+)',
            metrics,
        )
        assert processed is not None and float(processed.group(1)) >= 3

    # The console, a process of its own, reads the same customer through the services' APIs with the admin key.
    async with httpx.AsyncClient(base_url=platform.url("console"), timeout=10) as console:
        signed_in = await console.post("/login", data={"api_key": ADMIN_KEY, "next": "/customers/c-42"})
        assert signed_in.status_code == 303
        page = await console.get(signed_in.headers["location"])
        assert page.status_code == 200 and 'data-customer="c-42"' in page.text and "t-1" in page.text


async def test_bad_input_gets_a_problem_naming_the_field(platform: Supervisor) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        url = f"{platform.url('ingest')}/v1/events"
        unauthenticated = await client.post(url, json={})
        assert_problem(unauthenticated, 401)
        bad = purchase("e2e-bad", "c-1", 10, datetime.now(UTC))
        bad["data"]["currency"] = "XYZ"
        response = await client.post(url, json=bad, headers=AUTH)
        assert response.status_code == 422
        body = response.json()
        assert body["errors"][0]["field"] == "data.currency"
        reader = await client.post(url, json=bad, headers={"Authorization": "Bearer test-reader-key"})
        assert reader.status_code == 403


async def test_supervisor_restarts_a_crashed_service(platform: Supervisor) -> None:
    child = platform.children["profile"]
    assert child.process is not None
    crashed_pid = child.process.pid
    child.process.kill()
    child.process.wait()
    ready = await platform.wait_ready(60)
    assert ready["profile"], "profile was not restarted"
    assert child.process.pid != crashed_pid
    assert child.restarts == 1
