"""What every insights use case needs: settings, sessions, the outbox and the "as of" clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.clock import as_of
from libs.common.outbox import Outbox
from services.insights.adapters import store
from services.insights.settings import InsightsSettings

SOURCE = "retain/insights"


@dataclass
class InsightsDeps:
    settings: InsightsSettings
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox

    async def now(self) -> datetime:
        """The "as of" moment: wall time live, the newest consumed event time in replay mode."""
        async with self.sessions() as session:
            return as_of(self.settings.clock_mode, await store.newest_event_at(session))
