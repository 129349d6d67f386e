"""Publishes accepted events that the request path left in the event log (the broker was unreachable).

Runs from start-up whether or not the broker is up, so the outbox depth is reported while degraded.
It also probes a broker the circuit considers down, and recreates the topics before draining: a
restarted embedded broker has lost them, and auto-created ones would get a different partition count.
"""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from libs.common import metrics as common_metrics
from libs.common.kafka import ensure_topics, ping
from libs.common.runtime import Runtime
from services.ingest.adapters import event_log
from services.ingest.adapters.broker import publish_records
from services.ingest.adapters.records import EventRecord
from services.ingest.handlers.deps import IngestDeps
from services.ingest.metrics import OUTBOX_DEPTH, PUBLISH_LATENCY

log = logging.getLogger(__name__)

PURGE_EVERY_S = 600
# The relay is not on anyone's request path: it can afford to wait longer for acknowledgements.
RELAY_DELIVERY_TIMEOUT_S = 10.0


async def drain_once(ctx: IngestDeps) -> int:
    """Publishes one batch of unpublished events; returns how many the broker acknowledged."""
    if not ctx.publisher.started:
        return 0
    if ctx.circuit.is_open and await ping(ctx.publisher):
        # Back from an outage: if the broker restarted empty, what it had joins the backlog before anything is sent.
        await ctx.runtime.redeliver_if_forgotten()
    async with ctx.pool.acquire() as conn, conn.transaction():
        records = await event_log.claim_unpublished(conn, ctx.settings.ingest_relay_batch_size)
        if not records:
            if ctx.circuit.is_open and await ping(ctx.publisher):
                ctx.broker_succeeded()
            return 0
        delivered_late, waiting, records = _settle_in_doubt(ctx, records)
        await event_log.set_published(conn, delivered_late, True)
        if not records:
            return len(delivered_late)
        if ctx.circuit.is_open:
            await asyncio.wait_for(ensure_topics(ctx.settings), RELAY_DELIVERY_TIMEOUT_S)
        started = time.perf_counter()
        delivery = await publish_records(ctx.publisher, ctx.topic, records, RELAY_DELIVERY_TIMEOUT_S)
        acked, failed = delivery.acked, delivery.failed
        ctx.in_doubt.update(delivery.in_doubt)
        await event_log.set_published(conn, acked, True)
    if waiting:
        log.info("waiting for the producer to settle earlier deliveries", extra={"count": waiting})
    if failed:
        ctx.broker_failed()
    else:
        PUBLISH_LATENCY.labels("relay").observe(time.perf_counter() - started)
        ctx.broker_succeeded()
        log.info("relayed events from the outbox", extra={"count": len(acked)})
    return len(acked)


def _settle_in_doubt(ctx: IngestDeps, records: list[EventRecord]) -> tuple[list[str], int, list[EventRecord]]:
    """Splits claimed rows: delivered after the request gave up (just mark them), still in the producer
    (leave them for a later round), and really undelivered (publish them now)."""
    delivered: list[str] = []
    waiting = 0
    to_publish: list[EventRecord] = []
    for record in records:
        future = ctx.in_doubt.get(record.event_id)
        if future is None:
            to_publish.append(record)
        elif not future.done():
            waiting += 1
        else:
            del ctx.in_doubt[record.event_id]
            if not future.cancelled() and future.exception() is None:
                delivered.append(record.event_id)
            else:
                to_publish.append(record)
    return delivered, waiting, to_publish


async def report_depth(ctx: IngestDeps) -> int:
    async with ctx.pool.acquire() as conn:
        depth = await event_log.unpublished_count(conn)
    OUTBOX_DEPTH.set(depth)
    common_metrics.OUTBOX_BACKLOG.labels(ctx.settings.service).set(depth)
    return depth


async def purge(ctx: IngestDeps) -> None:
    days = ctx.settings.ingest_event_log_retention_days
    if days is None:
        return
    # Never shorter than the dedupe window (a purged id would be accepted again as new), nor than the redelivery
    # window (a broker that lost the events gets them from here).
    keep_days = max(days, ctx.settings.ingest_dedupe_window_s / 86400, ctx.settings.redelivery_window_s / 86400)
    async with ctx.pool.acquire() as conn:
        removed = await event_log.purge_older_than(conn, keep_days)
    if removed:
        log.info("purged old event log rows", extra={"count": removed})


async def redeliver(runtime: Runtime) -> int:
    """Marks the events published within the redelivery window unpublished again, for a broker that lost them:
    the relay then publishes them in the order they were received (consumers dedupe on ce_id)."""
    window_s = runtime.settings.redelivery_window_s
    if window_s <= 0:
        return 0
    conn = await asyncpg.connect(event_log.asyncpg_dsn(runtime.settings.database_url))
    try:
        return await event_log.mark_unpublished_since(conn, window_s)
    finally:
        await conn.close()


async def relay_forever(ctx: IngestDeps) -> None:
    last_purge = 0.0
    while True:
        drained = 0
        try:
            drained = await drain_once(ctx)
            if drained < ctx.settings.ingest_relay_batch_size:
                await report_depth(ctx)
            if time.monotonic() - last_purge > PURGE_EVERY_S:
                last_purge = time.monotonic()
                await purge(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("ingest relay failed; retrying", exc_info=True)
            ctx.broker_failed()
        if drained >= ctx.settings.ingest_relay_batch_size:
            continue
        ctx.relay_wakeup.clear()
        try:
            # Woken early when a request leaves events behind; otherwise a slow poll (the request path
            # publishes on its own in normal operation).
            await asyncio.wait_for(ctx.relay_wakeup.wait(), 0.5 if ctx.circuit.is_open else 1.0)
        except TimeoutError:
            pass
        if ctx.circuit.is_open:
            await asyncio.sleep(0.2)  # do not spin against a broker that is down
