"""Accepting events: deduplicated in the event log, published with acks=all, or kept for the relay.

The insert and the publish share one transaction. Rows are inserted as published and the transaction
commits only after the broker acknowledged; events the broker did not acknowledge in time are flipped
to unpublished before the commit, so the relay only ever sees rows that the request gave up on and
nothing is published twice in normal operation. A concurrent request with the same id waits on the
row lock and is then answered "duplicate". When the circuit says the broker is down the publish is
skipped entirely and the answer comes as fast as the database commits.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

import asyncpg

from services.ingest.adapters import erasures, event_log
from services.ingest.adapters.broker import publish_records
from services.ingest.adapters.records import EventRecord
from services.ingest.domain.acceptance import Acceptance as Acceptance
from services.ingest.domain.acceptance import Status as Status
from services.ingest.domain.incoming import ValidEvent
from services.ingest.handlers.deps import IngestDeps
from services.ingest.handlers.sealing import seal_records
from services.ingest.metrics import EVENTS, PUBLISH_LATENCY


async def accept_events(ctx: IngestDeps, events: Sequence[ValidEvent], source: str) -> list[Acceptance]:
    """One outcome per input event, in order; a repeated id within `events` is a duplicate of the first."""
    return await accept_items(ctx, [(event, source) for event in events])


async def accept_items(
    ctx: IngestDeps, items: Sequence[tuple[ValidEvent, str]], progress: list[str] | None = None
) -> list[Acceptance]:
    """Like accept_events, each event with its own source (a group commit mixes requests of several keys).

    `progress`, when given, gets "publishing" appended once events were handed to the broker: a caller
    retrying after a failure must not retry what may already be on the topic.
    """
    if not items:
        return []
    records, by_id = _first_records(items)
    use_broker = ctx.broker_usable()
    failed: set[str] = set()
    past: set[str] = set()
    async with ctx.pool.acquire() as conn, conn.transaction():
        erased_at = await erasures.erased_at(conn, {record.customer_id for record in records})
        if erased_at:
            past = {r.event_id for r in records if r.customer_id in erased_at and r.time <= erased_at[r.customer_id]}
            records = [record for record in records if record.event_id not in past]
        if ctx.sealer is not None and ctx.settings.personal_data_encryption and records:
            records = await seal_records(conn, ctx.sealer, records, by_id)
        fresh_ids = (
            await event_log.insert_fresh(
                conn, records, published=use_broker, dedupe_window_s=ctx.settings.ingest_dedupe_window_s
            )
            if records
            else set()
        )
        fresh = [r for r in records if r.event_id in fresh_ids]
        if fresh and use_broker:
            if progress is not None:
                progress.append("publishing")
            failed = await _publish(ctx, conn, fresh)
        elif fresh:
            await event_log.commit_durably(conn)  # the outbox is now the only copy
    if fresh and (not use_broker or failed):
        ctx.relay_wakeup.set()
    return _outcomes(items, past, fresh_ids, failed if use_broker else None)


def _first_records(items: Sequence[tuple[ValidEvent, str]]) -> tuple[list[EventRecord], dict[str, ValidEvent]]:
    """One record per event id, of its first occurrence; later ones are duplicates."""
    first: dict[str, EventRecord] = {}
    by_id: dict[str, ValidEvent] = {}
    for event, source in items:
        if event.id not in first:
            first[event.id] = EventRecord.of(event, source)
            by_id[event.id] = event
    return list(first.values()), by_id


async def _publish(ctx: IngestDeps, conn: asyncpg.Connection, fresh: list[EventRecord]) -> set[str]:
    """Publishes inside the accepting transaction; the ids the broker did not acknowledge are marked unpublished
    and made durable for the relay. Returns those ids."""
    started = time.perf_counter()
    delivery = await publish_records(ctx.publisher, ctx.topic, fresh, ctx.settings.ingest_delivery_timeout_s)
    ctx.in_doubt.update(delivery.in_doubt)
    if delivery.failed:
        await event_log.set_published(conn, delivery.failed, False)
        await event_log.commit_durably(conn)
        ctx.broker_failed()
        return set(delivery.failed)
    PUBLISH_LATENCY.labels("request").observe(time.perf_counter() - started)
    ctx.broker_succeeded()
    return set()


def _outcomes(
    items: Sequence[tuple[ValidEvent, str]], past: set[str], fresh_ids: set[str], failed: set[str] | None
) -> list[Acceptance]:
    """One outcome per input item, counted; `failed` None means the broker was not used."""
    outcomes: list[Acceptance] = []
    counts: Counter[tuple[str, str, str]] = Counter()
    claimed: set[str] = set()
    for event, source in items:
        if event.id in past:
            outcomes.append(Acceptance(event.id, "erased", False))
            counts[(event.type, source, "erased")] += 1
        elif event.id in fresh_ids and event.id not in claimed:
            claimed.add(event.id)
            published = failed is not None and event.id not in failed
            outcomes.append(Acceptance(event.id, "accepted", published))
            counts[(event.type, source, "accepted")] += 1
        else:
            outcomes.append(Acceptance(event.id, "duplicate", False))
            counts[(event.type, source, "duplicate")] += 1
    for (event_type, source, outcome), n in counts.items():
        EVENTS.labels(event_type, source, outcome).inc(n)
    return outcomes


def count_rejected(event_types: Sequence[str | None], source: str) -> None:
    """Unknown or missing types are counted as "invalid" so junk cannot grow the label set."""
    from libs.common.events import UPSTREAM_EVENT_TYPES

    counts = Counter(t if t in UPSTREAM_EVENT_TYPES else "invalid" for t in event_types)
    for event_type, n in counts.items():
        EVENTS.labels(event_type, source, "rejected").inc(n)
