"""What ingest holds about a customer, opened: the data subject's part of `GET /v1/customers/{id}/export`."""

from __future__ import annotations

from typing import Any

import orjson

from libs.common import personal
from services.ingest.adapters import event_log, key_store
from services.ingest.handlers.deps import IngestDeps

EXPORT_LIMIT = 100_000


async def customer_events(ctx: IngestDeps, customer_id: str) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        records = await event_log.events_of(conn, customer_id, EXPORT_LIMIT)
        stored = await key_store.find(conn, customer_id)
    key = None
    if stored is not None and ctx.sealer is not None:
        key = personal.UnwrappedKey(stored[0], ctx.sealer.wrapper.unwrap(stored[1], customer_id))
    return {
        "customer_id": customer_id,
        "has_data_key": stored is not None,
        "events": [
            {
                "id": record.event_id,
                "type": record.type,
                "source": record.source,
                "time": record.time_text,
                "data": personal.open_data(customer_id, orjson.loads(record.value), key),
            }
            for record in records
        ],
    }
