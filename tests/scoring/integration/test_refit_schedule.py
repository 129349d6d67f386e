"""The periodic refit follows the service's clock, not the machine's: the injected wall clock live, the newest event
time in replay (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.scoring.adapters.tables import models
from services.scoring.handlers.refit import refit_if_due
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, harness, purchase

WEEK = timedelta(days=7)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _versions(h: Harness) -> int:
    async with h.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(models)) or 0)


async def test_live_refits_when_the_injected_clock_says_the_interval_has_passed(isolated: Isolation) -> None:
    async for h in harness(isolated, scoring_refit_interval_s=WEEK.total_seconds()):
        # years from the machine's time: only the injected clock counts
        now = datetime(2031, 5, 1, 12, tzinfo=UTC)
        clock = h.service.wall = Clock(now)
        await h.purchases(purchase("p1", "c-1", now - timedelta(days=3), 50.0))
        assert await refit_if_due(h.service, h.sessions, h.outbox) == WEEK.total_seconds()  # no model yet
        assert await _versions(h) == 1
        clock.now = now + WEEK - timedelta(seconds=10)
        assert await refit_if_due(h.service, h.sessions, h.outbox) == 10.0
        assert await _versions(h) == 1
        clock.now = now + WEEK
        assert await refit_if_due(h.service, h.sessions, h.outbox) == WEEK.total_seconds()
        assert await _versions(h) == 2


async def test_replay_refits_as_event_time_passes(isolated: Isolation) -> None:
    async for h in harness(isolated, clock_mode="replay", scoring_refit_interval_s=WEEK.total_seconds()):
        h.service.wall = lambda: datetime(2040, 1, 1, tzinfo=UTC)  # ignored in replay
        start = datetime(1997, 1, 1, tzinfo=UTC)
        await h.purchases(purchase("p1", "c-1", start, 50.0))
        await refit_if_due(h.service, h.sessions, h.outbox)
        assert await _versions(h) == 1
        await h.purchases(purchase("p2", "c-2", start + timedelta(days=6), 20.0))
        assert await refit_if_due(h.service, h.sessions, h.outbox) == timedelta(days=1).total_seconds()
        assert await _versions(h) == 1
        await h.purchases(purchase("p3", "c-3", start + WEEK, 20.0))
        await refit_if_due(h.service, h.sessions, h.outbox)
        assert await _versions(h) == 2
        async with h.sessions() as session:
            newest = await session.scalar(select(func.max(models.c.as_of)))
        assert newest == start + WEEK
