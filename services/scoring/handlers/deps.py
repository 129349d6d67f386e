"""What every scoring use case needs: settings, the scoring configuration, the active model and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import as_of as clock_as_of
from libs.common.clock import wall_clock
from services.scoring.adapters import scores
from services.scoring.domain.due import DueConfig
from services.scoring.domain.policy import NO_MODEL, ActiveModel
from services.scoring.settings import ScoringSettings


class ScoringDeps:
    """One per process, shared by the consumers, the refit and due passes and the API; holds the active model
    so a batch reloads it only when a refit stored a new version."""

    def __init__(self, settings: ScoringSettings, wall: Callable[[], datetime] = wall_clock) -> None:
        self.settings = settings
        self.wall = wall  # the live clock; tests inject their own
        self.config = settings.scoring_config()
        self.change = settings.change_config()
        self.small_base = settings.small_base_config()
        self.due_config = DueConfig(
            lifecycle=self.config.lifecycle,
            churn=self.config.churn,
            complaint_open_days=settings.scoring_complaint_open_days,
            sla_breach_days=settings.scoring_sla_breach_days,
            churn_levels=self.change.churn_levels,
        )
        self._active: ActiveModel = NO_MODEL

    async def active_model(self, session: AsyncSession) -> ActiveModel:
        """The newest stored model. One indexed max() per batch; the model itself is reloaded only
        when another replica (or this one) stored a new version."""
        latest = await scores.latest_model_version(session)
        if latest is None:
            return NO_MODEL
        if self._active.version != latest:
            self._active = await scores.load_model(session, latest)
        return self._active

    def use_model(self, active: ActiveModel) -> None:
        self._active = active

    async def clock(self, session: AsyncSession, newest_in_batch: datetime | None = None) -> datetime:
        """Wall time live; the newest event time seen (stored watermark or this batch) in replay."""
        newest = await scores.newest_event_time(session)
        if newest_in_batch is not None and (newest is None or newest_in_batch > newest):
            newest = newest_in_batch
        return clock_as_of(self.settings.clock_mode, newest, self.wall)
