"""Publishes accepted events the broker did not acknowledge at request time."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import func, select

from libs.common import metrics
from libs.common.envelope import CloudEvent
from libs.common.runtime import Runtime
from services.ingest.adapters.tables import event_log
from services.ingest.handlers.accept import publish_and_mark

log = logging.getLogger(__name__)

# Rows younger than this may still be in flight on the request path; publishing them here too
# would publish twice in normal operation.
IN_FLIGHT_GRACE = timedelta(seconds=5)


async def drain_unpublished(runtime: Runtime, batch_size: int = 1000) -> int:
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(event_log)
                .where(~event_log.c.published, event_log.c.received_at < func.now() - IN_FLIGHT_GRACE)
                .order_by(event_log.c.received_at)
                .limit(batch_size)
            )
        ).all()
    events = [
        CloudEvent(
            id=row.event_id,
            source=row.source,
            type=row.type,
            subject=row.customer_id,
            time=row.event_time,
            data=row.data,
        )
        for row in rows
    ]
    if events and not await publish_and_mark(events, runtime.sessions, runtime.publisher):
        return 0
    return len(events)


async def unpublished_count(runtime: Runtime) -> int:
    async with runtime.sessions() as session:
        return int(await session.scalar(select(func.count()).where(~event_log.c.published)) or 0)


async def ingest_relay(runtime: Runtime) -> None:
    while True:
        try:
            drained = await drain_unpublished(runtime)
            metrics.OUTBOX_BACKLOG.labels(runtime.settings.service).set(await unpublished_count(runtime))
        except Exception:
            log.exception("ingest relay failed; retrying")
            drained = 0
        await asyncio.sleep(0.05 if drained else 1.0)
