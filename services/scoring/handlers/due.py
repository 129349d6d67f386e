"""Due-time transitions: customers rescored at the instant their score changes without any event.

Each scoring of a customer stores their next due time (domain/due.py). A pass claims the due rows with
FOR UPDATE SKIP LOCKED, so replicas share the work and never take the same row, and rescores each customer as
of their due time: the events carry the due time, in replay as well as live, and their ids derive from the
customer and the due time, so a pass that rolls back and runs again emits the same ids. The new due time
(the next boundary after this one) replaces the claimed row in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.clock import as_of as clock_as_of
from libs.common.envelope import format_time, parse_time
from libs.common.loops import poll_forever
from libs.common.outbox import Outbox
from libs.common.topics import SCORE_CHANGES
from services.scoring.adapters import history, scores
from services.scoring.handlers.deps import ScoringDeps
from services.scoring.handlers.rescore import Rescore, score_batch

log = logging.getLogger(__name__)


def due_cause(customer_id: str, due_at: datetime) -> str:
    return f"due:{customer_id}:{format_time(due_at)}"


async def run_due_pass(
    deps: ScoringDeps,
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    clock: Callable[[], datetime] | None = None,
) -> int:
    """One transaction: rescores up to the batch size of customers that are due; returns how many."""
    async with sessions() as session, session.begin():
        wall = deps.wall if clock is None else clock
        now = clock_as_of(deps.settings.clock_mode, await scores.newest_event_time(session), wall)
        claimed = dict(await history.claim_due(session, now, deps.settings.scoring_due_batch_size))
        ids = await scores.try_lock_customers(session, claimed)
        if not ids:
            return 0
        stored, documents = await scores.lock_and_load(session, ids, create_missing=False)
        active = await deps.active_model(session)
        work = []
        for customer_id in ids:
            due_at = claimed[customer_id]
            if customer_id not in stored:
                continue  # no facts any more: set_due below drops the row
            scored_at = documents.get(customer_id, {}).get("as_of")
            as_of = due_at if scored_at is None else max(due_at, parse_time(scored_at))
            work.append(Rescore(customer_id, due_cause(customer_id, due_at), due_at, as_of, "due"))
        # a full pass is ~1 ms of numpy per customer: off the event loop, as the consumers do
        result = await asyncio.to_thread(score_batch, deps, work, stored, documents, active)
        result.due.update({customer_id: None for customer_id in ids if customer_id not in stored})
        await scores.save(session, [], result.documents)
        await result.store_history_and_due(session)
        if result.events:
            await outbox.add(session, SCORE_CHANGES, *result.events)
        return len(ids)


async def due_periodically(deps: ScoringDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
    batch = deps.settings.scoring_due_batch_size

    async def step() -> int:
        return await run_due_pass(deps, sessions, outbox)

    await poll_forever(step, interval_s=deps.settings.scoring_due_interval_s, name="due transitions", busy_at=batch)
