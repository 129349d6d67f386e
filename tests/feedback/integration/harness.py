"""Feedback on a real PostgreSQL without the broker: handlers called with a real session and outbox.

A consumer-group join costs seconds, so these tests drive the handlers exactly as the consumer loop
would (one transaction per event); test_app.py runs the whole app over HTTP and Kafka.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.common.consumer import EventHandler, HandlerContext
from libs.common.db import create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.migrations import migrate
from libs.common.outbox import Outbox
from services.feedback.adapters.tables import agents, messaging
from services.feedback.bootstrap import MIGRATIONS
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.settings import FeedbackSettings
from tests.conftest import Isolation
from tests.derived import NOON, derived_event
from tests.derived import Clock as Clock

T0 = NOON
event = derived_event


@dataclass
class Harness:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    deps: FeedbackDeps
    clock: Clock

    async def handle(self, handler: EventHandler, ev: CloudEvent) -> None:
        """One event in one transaction, as the consumer loop runs it."""
        async with self.sessions() as session, session.begin():
            await handler(HandlerContext(session, self.deps.outbox), ev)

    async def add_agent(self, agent_id: str, skills: list[str], max_load: int = 5) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                agents.insert().values(agent_id=agent_id, name=agent_id, skills=skills, max_load=max_load)
            )

    async def emitted(self, type_: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(ce_type, data) of every outbox row, oldest first."""
        table = messaging.outbox
        async with self.sessions() as session:
            rows = (await session.execute(select(table.c.headers, table.c.value).order_by(table.c.id))).all()
        found = [(next(v for k, v in headers if k == "ce_type"), orjson.loads(value)) for headers, value in rows]
        return [item for item in found if type_ is None or item[0] == type_]

    async def rows(self, query: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(query)).mappings().all())


async def make_harness(isolated: Isolation, **overrides: Any) -> AsyncIterator[Harness]:
    # The shared Settings drop unknown keys, so feedback's own are layered on after.
    base = isolated.settings("feedback").model_dump()
    settings = FeedbackSettings.model_validate({**base, "survey_token_secret": "test-secret", **overrides})
    await migrate(MIGRATIONS, settings.database_url, "feedback")
    engine = create_engine(settings)
    clock = Clock()
    deps = FeedbackDeps(settings, Outbox(messaging, settings.topic_prefix), clock=clock)
    try:
        yield Harness(engine, session_factory(engine), deps, clock)
    finally:
        await engine.dispose()
