"""Profile on a real PostgreSQL without the broker: the batch handler called as the consumer loop calls it, and the
HTTP API over ASGI with a Runtime that never starts consumers (a consumer-group join costs ~5 s per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from httpx import ASGITransport, AsyncClient
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from libs.common.migrations import migrate
from libs.common.personal import PersonalData
from libs.common.runtime import Runtime
from services.profile.adapters.tables import SCHEMA, messaging
from services.profile.bootstrap import DEFINITION, create_app
from services.profile.domain import ProfileEvent
from services.profile.handlers.apply_events import ProfileConsumer
from tests.conftest import ADMIN_KEY, Isolation

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "profile" / "migrations"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
READER = {"Authorization": "Bearer test-reader-key"}


def cloud(event: ProfileEvent | CloudEvent, *, subject: str | None = None, prefix: str = "") -> CloudEvent:
    return CloudEvent(
        id=prefix + event.id,
        source="test",
        type=event.type,
        subject=subject or event.subject,
        time=event.time,
        data=dict(event.data),
    )


def event(event_id: str, type_: str, subject: str, at: datetime, **data: Any) -> CloudEvent:
    return CloudEvent(id=event_id, source="test", type=type_, subject=subject, time=at, data=data)


@dataclass
class Harness:
    runtime: Runtime
    consumer: ProfileConsumer
    client: AsyncClient
    # What the consumer loop passes for personal data at rest (None: nothing sealed).
    personal: PersonalData | None = None

    async def deliver(self, *events: CloudEvent, inbox: bool = True) -> None:
        """One partition batch in one transaction, as ConsumerLoop runs it: inbox claim, then the handler."""
        async with self.runtime.sessions() as session, session.begin():
            fresh: list[CloudEvent] = list(events)
            if inbox:
                rows = [{"event_id": e.id, "consumer": "profile.customer-events"} for e in events]
                claimed = set(
                    (
                        await session.execute(
                            pg_insert(messaging.inbox)
                            .values(rows)
                            .on_conflict_do_nothing()
                            .returning(messaging.inbox.c.event_id)
                        )
                    ).scalars()
                )
                fresh = [e for e in events if e.id in claimed]
            if fresh:
                await self.consumer(HandlerContext(session, self.runtime.outbox, self.personal), fresh)

    async def emitted(self, type_: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(ce_type, subject, data) of outbox rows, oldest first."""
        table = messaging.outbox
        async with self.runtime.sessions() as session:
            rows = (await session.execute(select(table.c.headers, table.c.value).order_by(table.c.id))).all()
        found = []
        for row in rows:
            headers = dict(row.headers)
            if type_ is None or headers["ce_type"] == type_:
                found.append((headers["ce_type"], headers["ce_subject"], orjson.loads(row.value)))
        return found

    async def clear_outbox(self) -> None:
        async with self.runtime.sessions() as session, session.begin():
            await session.execute(messaging.outbox.delete())

    async def customer(self, customer_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/customers/{customer_id}", headers=READER)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def harness(
    isolated: Isolation, personal: PersonalData | None = None, **overrides: object
) -> AsyncIterator[Harness]:
    settings = isolated.settings(SCHEMA, clock_mode="replay", **overrides)
    await migrate(MIGRATIONS, settings.database_url, SCHEMA)
    app = create_app(settings)
    runtime = Runtime(DEFINITION, app.state.settings)
    runtime.personal = personal
    app.state.runtime = runtime
    consumer = ProfileConsumer(clock_mode="replay", state_cache_size=1000)
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            yield Harness(runtime, consumer, client, personal)
    finally:
        await runtime.publisher.stop()  # never started here, but aiokafka reports unstopped producers
        await runtime.engine.dispose()


def by_subject(events: Sequence[tuple[str, str, dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for _, subject, data in events:
        out.setdefault(subject, []).append(data)
    return out
