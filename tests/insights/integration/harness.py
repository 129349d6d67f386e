"""Insights on a real PostgreSQL: handlers called directly with a real session, as the consumer loop does."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from services.insights.adapters.tables import SCHEMA, messaging
from services.insights.handlers import consume
from services.insights.handlers.figures import Figures
from services.insights.settings import InsightsSettings, insights_settings
from tests.conftest import Isolation
from tests.derived import complete

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "insights" / "migrations"


@dataclass
class Harness:
    settings: InsightsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    figures: Figures

    async def deliver(self, handler: BatchHandler, *events: CloudEvent) -> None:
        """One consumer batch: the handler in one transaction, as ConsumerLoop runs it (minus the inbox)."""
        async with self.sessions() as session, session.begin():
            await handler(HandlerContext(session, self.figures.outbox), list(events))

    async def purchases(self, *events: CloudEvent) -> None:
        await self.deliver(consume.on_purchases, *events)

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

    async def kpis(self, period: str = "month", first: str | None = None, last: str | None = None) -> dict[str, Any]:
        from services.insights.domain.periods import Grain

        result = await self.figures.kpi_rows(Grain(period), _day(first), _day(last))
        return {row["period"]: row for row in result["rows"]}


def _day(text: str | None) -> Any:
    from datetime import date

    return None if text is None else date.fromisoformat(text)


async def harness(isolated: Isolation, **overrides: object) -> AsyncIterator[Harness]:
    settings = insights_settings(isolated.settings(SCHEMA, clock_mode="replay", **overrides))
    await migrate(MIGRATIONS, settings.database_url, SCHEMA)
    engine = create_engine(settings)
    try:
        sessions = session_factory(engine)
        yield Harness(settings, engine, sessions, Figures(settings, sessions, Outbox(messaging, "")))
    finally:
        await engine.dispose()


def purchase(
    event_id: str, customer: str, at: datetime, amount: float | str, *, order_id: str | None = None
) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="shop",
        type="purchase",
        subject=customer,
        time=at,
        data={"order_id": order_id or f"o-{event_id}", "amount": amount, "currency": "USD", "items": []},
    )


def scored(event_id: str, customer: str, at: datetime, tier: str, clv: float) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="retain/scoring",
        type="score.changed",
        subject=customer,
        time=at,
        data=complete("score.changed", {"tier": tier, "clv": clv}),
    )


def answered(event_id: str, customer: str, at: datetime, kind: str, score: int) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="retain/feedback",
        type="feedback.received",
        subject=customer,
        time=at,
        data=complete("feedback.received", {"score_type": kind, "score": score}),
    )


def erased(event_id: str, customer: str, at: datetime) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="retain/profile",
        type="customer.erased",
        subject=customer,
        time=at,
        data={"customer_id": customer},
    )


def refund(event_id: str, customer: str, at: datetime, amount: float | str, *, order_id: str) -> CloudEvent:
    return CloudEvent(
        id=event_id,
        source="shop",
        type="refund",
        subject=customer,
        time=at,
        data={"order_id": order_id, "amount": amount, "currency": "USD", "reason": "returned"},
    )
