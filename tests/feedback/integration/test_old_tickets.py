"""A ticket opened decades ago breaches its SLA by more seconds than 32 bits hold: stored, not dead-lettered."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from services.feedback.adapters.tables import sla_breaches
from services.feedback.handlers.tickets import ticket_handler
from tests.feedback.integration.harness import Harness, event


async def test_a_ticket_from_1950_breaches_once_with_its_elapsed_seconds(harness: Harness) -> None:
    h = harness
    opened = event(
        "ticket.opened", "c-old", {"ticket_id": "t-1950", "priority": "urgent"}, datetime(1950, 1, 1, tzinfo=UTC)
    )
    await h.handle(ticket_handler(h.deps), opened)
    rows = await h.rows(select(sla_breaches).order_by(sla_breaches.c.clock))
    assert [row["clock"] for row in rows] == ["first_response", "resolution"]
    assert all(row["elapsed_s"] > 2**31 for row in rows)
    assert [data["elapsed_s"] for _, data in await h.emitted("sla.breached")] == [row["elapsed_s"] for row in rows]
