"""Time-based triggers (birthday, N days after a purchase, replenishment due, inactivity).

Whenever a customer's facts change, each active time-triggered campaign's next due date is written
as a `scheduled_triggers` row, unique per (campaign, customer, window); a newer date replaces the
pending one. The scheduler claims due rows with FOR UPDATE SKIP LOCKED and fires them in the same
transaction that marks them `fired`, so rows survive restarts and fire once with any number of
replicas (and the action's idempotency key would stop a second firing anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.consumer import HandlerContext
from libs.common.loops import poll_forever
from services.campaign.adapters import bulk, campaigns
from services.campaign.adapters.campaigns import StoredCampaign
from services.campaign.adapters.tables import aliases, scheduled_triggers
from services.campaign.domain.triggers import TriggerMatch, due_dates, trigger_window
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.firing import fire
from services.campaign.handlers.timing import (
    customer_facts_for_schedule,
    empty_facts,
    fire_time,
    schedule_rows,
    time_triggered,
)

log = logging.getLogger(__name__)


async def reschedule(
    deps: CampaignDeps,
    session: AsyncSession,
    customer_id: str,
    candidates: Iterable[StoredCampaign],
    today: date,
) -> None:
    """Brings the customer's pending rows in line with their facts as of `today`."""
    facts = await campaigns.load_facts(session, customer_id)
    schedule_facts = customer_facts_for_schedule(facts)
    for campaign in time_triggered(candidates):
        trigger = campaign.definition.trigger
        due = due_dates(trigger, schedule_facts, today)
        windows = [trigger_window(trigger, datetime.combine(d, time.min, tzinfo=UTC)) for d in due]
        # A newer purchase or a new prediction moves the date: the old pending row no longer applies.
        cancel = update(scheduled_triggers).where(
            scheduled_triggers.c.campaign_id == campaign.id,
            scheduled_triggers.c.customer_id == customer_id,
            scheduled_triggers.c.status == "pending",
        )
        if windows:
            cancel = cancel.where(scheduled_triggers.c.window.not_in(windows))
        await session.execute(cancel.values(status="cancelled"))
        for day, window in zip(due, windows, strict=True):
            await session.execute(
                pg_insert(scheduled_triggers)
                .values(
                    campaign_id=campaign.id,
                    customer_id=customer_id,
                    fire_at=fire_time(day, facts, deps),
                    window=window,
                )
                # Fired already stays fired; cancelled and re-announced comes back to life.
                .on_conflict_do_update(
                    constraint="scheduled_triggers_once",
                    set_={"status": "pending", "fire_at": fire_time(day, facts, deps)},
                    where=scheduled_triggers.c.status == "cancelled",
                )
            )


# Customers read and rescheduled at a time when a campaign is created: bounded memory, few round trips.
EVERYONE_CHUNK = 1000


async def schedule_campaign_for_everyone(deps: CampaignDeps, session: AsyncSession, campaign: StoredCampaign) -> int:
    """A new or re-activated time-triggered campaign covers customers already known, a chunk of them at a time."""
    if not time_triggered([campaign]):
        return 0
    now = deps.now()
    ids = await bulk.customer_ids(session)
    for start in range(0, len(ids), EVERYONE_CHUNK):
        chunk = ids[start : start + EVERYONE_CHUNK]
        found = await bulk.load_facts(session, chunk)
        facts = {customer_id: found.get(customer_id) or empty_facts(customer_id) for customer_id in chunk}
        keep, due = schedule_rows(deps, [campaign], facts, dict.fromkeys(chunk, now))
        await bulk.reschedule(session, keep, due)
    return len(ids)


class Scheduler:
    def __init__(self, deps: CampaignDeps, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.deps = deps
        self.sessions = sessions

    async def run(self) -> None:
        await poll_forever(self.run_once, interval_s=self.deps.settings.scheduler_poll_interval_s, name="scheduler")

    async def run_once(self) -> int:
        fired = 0
        while True:
            batch = await self._fire_batch()
            fired += batch
            if batch < self.deps.settings.scheduler_batch_size:
                return fired

    async def _fire_batch(self) -> int:
        now = self.deps.now()
        async with self.sessions() as session, session.begin():
            due = await campaigns.due_triggers(session, now, self.deps.settings.scheduler_batch_size)
            # The customers' locks before their rows, in the order every consumer batch takes them: a consumer
            # rescheduling the same customer never holds a row this transaction waits for, nor the reverse.
            await aliases.lock_many(session, {row.customer_id for row in due})
            rows = await campaigns.claim_triggers(session, [row.id for row in due])
            ctx = HandlerContext(session, self.deps.outbox)
            for row in rows:
                await self._fire(ctx, row)
        return len(rows)

    async def _fire(self, ctx: HandlerContext, row: Any) -> None:
        await ctx.session.execute(
            update(scheduled_triggers)
            .where(scheduled_triggers.c.id == row.id)
            .values(status="fired", fired_at=self.deps.now())
        )
        campaign = await campaigns.load_campaign(ctx.session, row.campaign_id)
        if campaign is None:
            return
        match = TriggerMatch(campaign.definition.trigger.kind, {"scheduled_for": row.fire_at.isoformat()})
        # A paused campaign still "fires": the status guard records the skip and its reason.
        await fire(self.deps, ctx, campaign, row.customer_id, match, row.window, row.fire_at)
        # The next occurrence (next year's birthday, ...) is scheduled from the day after this one.
        await reschedule(self.deps, ctx.session, row.customer_id, [campaign], row.fire_at.date() + timedelta(days=1))
