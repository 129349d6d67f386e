"""Crypto-shredding across the platform as processes: ingest seals, profile and feedback open with the key service
and still match identities, and an erasure destroys the keys of every id the person was known under."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from libs.common import personal
from libs.common.topics import CUSTOMER_EVENTS
from retain_cli.embedded import free_port
from retain_cli.supervisor import PROCESSES, Supervisor
from tests.conftest import ADMIN_KEY, Isolation
from tests.topics import read_events
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
MASTER = os.urandom(32)


@pytest.fixture
async def platform(isolated: Isolation, tmp_path: Any) -> AsyncIterator[Supervisor]:
    env = {**isolated.env(), "RETAIN_MASTER_KEY": base64.b64encode(MASTER).decode()}
    supervisor = Supervisor(env=env, ports={name: free_port() for name in PROCESSES}, log_dir=tmp_path)
    supervisor.start_all()
    try:
        ready = await supervisor.wait_ready(90)
        assert all(ready.values()), f"not ready: {ready}; logs in {tmp_path}"
        yield supervisor
    finally:
        await supervisor.shutdown(drain_timeout_s=20)
        supervisor.stop(PROCESSES)


def event(event_id: str, event_type: str, customer: str, **data: Any) -> dict[str, Any]:
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    return {"id": event_id, "type": event_type, "customer_id": customer, "time": at, "data": data}


async def test_sealed_personal_data_is_shown_matched_and_shredded(platform: Supervisor, isolated: Isolation) -> None:
    ingest, profile, feedback = (platform.url(name) for name in ("ingest", "profile", "feedback"))
    batch = [
        event("s-1", "customer.upserted", "c-eve", name="Eve Example", email="Eve@Example.com"),
        event("s-2", "ticket.opened", "c-eve", ticket_id="t-eve", text="please call me on my mobile"),
        # Another system's id for the same person: profile's identity resolution attaches it by email.
        event("s-3", "customer.upserted", "c-eve-erp", email="eve@example.com", phone="+14155550100"),
    ]
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        answer = await client.post(f"{ingest}/v1/events:batch", json={"events": batch})
        assert answer.status_code == 202, answer.text

        topic = await read_events(isolated.stack.broker.bootstrap, f"{isolated.prefix}{CUSTOMER_EVENTS}", expect=3)
        assert "eve@example.com" not in repr([e.data for e in topic]).lower()

        async def attached() -> dict[str, Any] | None:
            response = await client.get(f"{profile}/v1/customers/c-eve-erp")
            body: dict[str, Any] = response.json()
            return body if response.status_code == 200 and body["customer_id"] == "c-eve" else None

        view = await eventually(attached, timeout_s=30)
        assert view["identities"]["email"] == "eve@example.com"
        assert view["identities"]["phone"] == "+14155550100"
        assert view["attributes"]["name"] == "Eve Example"
        found = (await client.get(f"{profile}/v1/customers", params={"email": "EVE@example.com"})).json()
        assert [item["customer_id"] for item in found["items"]] == ["c-eve"]

        async def ticket() -> dict[str, Any] | None:
            response = await client.get(f"{feedback}/v1/tickets/t-eve")
            return response.json() if response.status_code == 200 else None

        assert "please call me on my mobile" in repr(await eventually(ticket, timeout_s=30))

        assert (await client.delete(f"{profile}/v1/customers/c-eve")).status_code in (200, 202, 204)
        credential = {"Authorization": f"Bearer {personal.credential_for(MASTER)}"}

        async def shredded() -> bool:
            codes = [
                (await client.get(f"{ingest}/v1/keys/{c}", headers=credential)).status_code
                for c in ("c-eve", "c-eve-erp")
            ]
            return codes == [404, 404]

        await eventually(shredded, timeout_s=30)
