"""Publishing event records with a bounded wait, reporting which ones the broker acknowledged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError

from libs.common.kafka import Publisher, Sent
from services.ingest.adapters.records import EventRecord

log = logging.getLogger(__name__)


def _swallow(future: asyncio.Future[Any]) -> None:
    # A delivery we stopped waiting for may still fail later; the event is in the outbox by then.
    if not future.cancelled():
        future.exception()


@dataclass
class Delivery:
    acked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Handed to the producer but not acknowledged in time: the producer may still deliver them.
    in_doubt: dict[str, asyncio.Future[Any]] = field(default_factory=dict)


async def publish_records(
    publisher: Publisher, topic: str, records: Sequence[EventRecord], timeout_s: float
) -> Delivery:
    """Sends all records and waits at most `timeout_s` for their acknowledgements (acks=all).

    Sending everything before awaiting any acknowledgement is what makes a batch cost one round trip.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    sent: list[Sent] = []
    try:
        async with asyncio.timeout(timeout_s):
            sent = await publisher.send_records(topic, [record.kafka() for record in records])
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("could not hand events to the producer", extra={"error": repr(exc)})
    if sent:
        await asyncio.wait([future for future, _ in sent], timeout=max(0.0, deadline - loop.time()))
    delivery = Delivery()
    for future, positions in sent:
        ids = [records[position].event_id for position in positions]
        if not future.done():
            future.add_done_callback(_swallow)
            delivery.in_doubt.update(dict.fromkeys(ids, future))
        elif not future.cancelled() and future.exception() is None:
            delivery.acked += ids
    settled = set(delivery.acked)
    delivery.failed = [r.event_id for r in records if r.event_id not in settled]
    return delivery
