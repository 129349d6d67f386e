"""Scoring on a real PostgreSQL: handlers called directly with a real session, as the consumer loop does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.common.consumer import BatchHandler, HandlerContext
from libs.common.db import create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.migrations import migrate
from libs.common.outbox import Outbox
from services.scoring.adapters.tables import SCHEMA, messaging, scores
from services.scoring.handlers.deps import ScoringDeps
from services.scoring.handlers.rescore import ScoringConsumers
from services.scoring.settings import ScoringSettings
from tests.conftest import Isolation
from tests.derived import complete

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "scoring" / "migrations"


@dataclass
class Harness:
    settings: ScoringSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    service: ScoringDeps

    @property
    def consumers(self) -> ScoringConsumers:
        return ScoringConsumers(self.service)

    async def deliver(self, handler: BatchHandler, *events: CloudEvent) -> None:
        """One consumer batch: the handler in one transaction, as ConsumerLoop runs it."""
        async with self.sessions() as session, session.begin():
            await handler(HandlerContext(session, self.outbox), list(events))

    async def profile(self, *events: CloudEvent) -> None:
        await self.deliver(self.consumers.handle_profile_changes, *events)

    async def feedback(self, *events: CloudEvent) -> None:
        await self.deliver(self.consumers.handle_feedback, *events)

    async def purchases(self, *events: CloudEvent) -> None:
        await self.deliver(self.consumers.handle_purchases, *events)

    async def score(self, customer_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            return await session.scalar(select(scores.c.score).where(scores.c.customer_id == customer_id))

    async def emitted(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(ce_type, subject, data) of every outbox row, oldest first."""
        table = messaging.outbox
        async with self.sessions() as session:
            rows = (await session.execute(select(table.c.headers, table.c.value).order_by(table.c.id))).all()
        out = []
        for row in rows:
            headers = dict(row.headers)
            out.append((headers["ce_type"], headers["ce_subject"], orjson.loads(row.value)))
        return out

    async def clear_outbox(self) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(messaging.outbox.delete())


async def harness(isolated: Isolation, **overrides: object) -> AsyncIterator[Harness]:
    # scoring's own fields are not shared settings: they are set on ScoringSettings itself
    settings = ScoringSettings(**{**isolated.settings(SCHEMA).model_dump(), **overrides})
    await migrate(MIGRATIONS, settings.database_url, SCHEMA)
    engine = create_engine(settings)
    try:
        yield Harness(settings, engine, session_factory(engine), Outbox(messaging, ""), ScoringDeps(settings))
    finally:
        await engine.dispose()


def profile_updated(
    event_id: str, customer: str, at: datetime, version: int | None = None, **metrics: Any
) -> CloudEvent:
    """A `profile.updated`; scoring takes logins, ratios, tickets and NPS from it (purchases come on their own)."""
    data: dict[str, Any] = {"cause": {"id": f"src-{event_id}", "type": "login"}, "metrics": metrics}
    if version is not None:
        data["version"] = version
    return CloudEvent(
        id=event_id,
        source="retain/profile",
        type="profile.updated",
        subject=customer,
        time=at,
        data=complete("profile.updated", data),
    )


def purchase(event_id: str, customer: str, at: datetime, amount: float, order_id: str | None = None) -> CloudEvent:
    """An upstream purchase as it arrives on customer-events."""
    return CloudEvent(
        id=event_id,
        source="shop",
        type="purchase",
        subject=customer,
        time=at,
        data={"order_id": order_id or f"o-{event_id}", "amount": amount, "currency": "USD"},
    )


def feedback_event(event_id: str, customer: str, at: datetime, type_: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        id=event_id, source="retain/feedback", type=type_, subject=customer, time=at, data=complete(type_, data)
    )


def of_type(emitted: Sequence[tuple[str, str, dict[str, Any]]], type_: str) -> list[dict[str, Any]]:
    return [data for kind, _, data in emitted if kind == type_]
