"""`customer.erased` reaches the event log: the erased customer's past events are deleted and never replayed.

Erasure is of past data. Events of an erased customer with a time up to the erasure instant are deleted from the
event log (they are the person's personal data; nothing needs them any more: every consumer refuses them), and a
re-post of such an event is answered "erased" and neither kept nor published. An event after the instant is the
customer coming back and is accepted as any other, as profile starts a fresh profile for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from libs.common.erasures import erased_id
from libs.common.loops import poll_forever
from libs.common.runtime import Runtime
from services.ingest.adapters import erasures, key_store

log = logging.getLogger(__name__)

SCRUB_BATCH = 500
SCRUB_INTERVAL_S = 0.5


async def on_customer_erased(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    erased: dict[str, datetime] = {}
    for event in events:
        customer_id = erased_id(event)
        erased[customer_id] = max(event.time, erased.get(customer_id, event.time))
    await erasures.record(ctx.session, erased)
    # Crypto-shredding: every sealed copy of their personal data (event log, topics, backups) is unreadable now.
    await key_store.destroy(ctx.session, erased)
    log.info("erasures recorded; event log scrub queued", extra={"count": len(erased)})


async def scrub_forever(runtime: Runtime) -> None:
    """Deletes the queued erasures' events from the event log, in transactions of their own (see adapters)."""

    async def scrub() -> int:
        async with runtime.sessions() as session, session.begin():
            done = await erasures.scrub_pending(session, SCRUB_BATCH)
        if done:
            log.info("event log scrubbed of erased customers", extra={"count": done})
        return done

    await poll_forever(scrub, interval_s=SCRUB_INTERVAL_S, name="erasure scrub", busy_at=SCRUB_BATCH)
