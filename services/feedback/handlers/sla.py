"""SLA breaches: raised once per (ticket, clock), on every ticket change and by a periodic checker.

Exactly once comes from the `sla_breaches` primary key: the breach row and its `sla.breached` outbox row
are written in one transaction, and only when the insert actually created the row. The checker claims
due tickets with FOR UPDATE SKIP LOCKED, so replicas split the work instead of racing; if two paths still
meet on one ticket (a ticket event and a checker), the second insert waits on the first and does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.contracts import SlaBreached, derived
from libs.common.loops import poll_forever
from libs.common.outbox import Outbox
from services.feedback.adapters import tickets
from services.feedback.domain.sla import CLOCKS, Breach, SlaClock, new_breaches, parse_tier
from services.feedback.domain.tickets import Ticket
from services.feedback.handlers.deps import SOURCE, FeedbackDeps

log = logging.getLogger(__name__)


async def _record(session: AsyncSession, outbox: Outbox, ticket: Ticket, tier: str, breach: Breach) -> bool:
    target_s, elapsed_s = int(breach.target.total_seconds()), int(breach.elapsed.total_seconds())
    inserted = await tickets.insert_breach(
        session,
        ticket_id=ticket.ticket_id,
        clock=breach.clock,
        customer_id=ticket.customer_id,
        tier=tier,
        priority=ticket.priority,
        target_s=target_s,
        elapsed_s=elapsed_s,
        breached_at=breach.breached_at,
        detected_at=breach.detected_at,
    )
    if not inserted:
        return False
    topic, event = derived(
        SlaBreached(
            ticket_id=ticket.ticket_id,
            clock=breach.clock,
            tier=tier,
            priority=ticket.priority,
            target_s=target_s,
            elapsed_s=elapsed_s,
        ),
        # The cause is the breach itself, so its id is the same whichever path or replica detects it.
        cause=f"sla:{breach.key}",
        source=SOURCE,
        subject=ticket.customer_id,
        time=breach.breached_at,
    )
    await outbox.add(session, topic, event)
    return True


async def evaluate(
    deps: FeedbackDeps, session: AsyncSession, outbox: Outbox, ticket: Ticket, tier: str, now: datetime
) -> list[Breach]:
    """Raises the breaches due by `now` and stores the next deadline; the ticket row must be locked."""
    raised = await tickets.raised_clocks(session, ticket.ticket_id)
    sla_ticket = ticket.sla_ticket(parse_tier(tier))
    fresh: list[Breach] = []
    for breach in new_breaches(sla_ticket, now, raised, deps.sla_table):
        if await _record(session, outbox, ticket, tier, breach):
            fresh.append(breach)
        raised.add(breach.clock)
    clock = SlaClock(sla_ticket, deps.sla_table)
    deadlines = [
        reading.due_at
        for name in CLOCKS
        if name not in raised and (reading := clock.reading(name, now)).due_at is not None
    ]
    await tickets.set_sla_due(session, ticket.ticket_id, min(deadlines) if deadlines else None)
    return fresh


async def check_due(deps: FeedbackDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> int:
    """One pass: tickets whose deadline has come, claimed with SKIP LOCKED. Returns tickets examined."""
    async with sessions() as session, session.begin():
        now = await _checker_now(deps, session)
        rows = await tickets.claim_due(session, now, deps.settings.sla_check_batch_size)
        for row in rows:
            breaches = await evaluate(deps, session, outbox, tickets.to_domain(row), row["tier"], now)
            for breach in breaches:
                log.info("sla breached", extra={"ticket_id": breach.ticket_id, "clock": breach.clock})
        return len(rows)


async def _checker_now(deps: FeedbackDeps, session: AsyncSession) -> datetime:
    # Replaying history, "now" is the newest ticket event seen, so deadlines fall as they did when lived.
    newest = None
    if deps.settings.clock_mode == "replay":
        newest = await tickets.newest_update(session)
    return deps.now(newest)


async def run_checker(deps: FeedbackDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
    """The background loop; a failed pass is logged and retried, never fatal to the service."""

    async def check() -> int:
        return await check_due(deps, sessions, outbox)

    await poll_forever(
        check,
        interval_s=deps.settings.sla_check_interval_s,
        name="sla check",
        busy_at=deps.settings.sla_check_batch_size,
    )
