"""Re-publishing a range of the event log: safe at any time because every consumer dedupes on ce_id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.common.problems import Problem
from services.ingest.adapters import event_log
from services.ingest.adapters.broker import publish_records
from services.ingest.handlers.deps import IngestDeps
from services.ingest.metrics import REPLAYED

REPLAY_CHUNK = 2000
REPLAY_DELIVERY_TIMEOUT_S = 30.0


async def replay(ctx: IngestDeps, start: datetime, end: datetime, types: Sequence[str] | None) -> int:
    if not ctx.publisher.started:
        raise Problem(503, "Broker unavailable", "replay needs the broker; try again when /readyz says ready")
    total = 0
    async with ctx.pool.acquire() as conn:
        async for chunk in event_log.events_between(conn, start, end, types, REPLAY_CHUNK):
            delivery = await publish_records(ctx.publisher, ctx.topic, chunk, REPLAY_DELIVERY_TIMEOUT_S)
            if delivery.failed:
                raise Problem(
                    503, "Broker unavailable", f"replay stopped after {total} events; run it again (it is safe)"
                )
            total += len(chunk)
            REPLAYED.inc(len(chunk))
    return total
