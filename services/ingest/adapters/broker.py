"""Publishing event records with a bounded wait, reporting which ones the broker acknowledged.

Records are grouped by partition and appended to producer batches directly (`create_batch` /
`send_batch`): aiokafka's per-record `send()` costs ~25 µs of Python each, appending to a batch a few,
and on a 2-core machine that difference is most of the batch endpoint's throughput. Partitions are
chosen with the producer's own partitioner (murmur2 of the key, as the Java client and `send()` do), so
a customer's events land on the same partition whichever path published them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError

from libs.common.kafka import Publisher
from services.ingest.adapters.records import EventRecord

log = logging.getLogger(__name__)

_PARTITION_CACHE_LIMIT = 200_000
_partition_cache: dict[tuple[str, int, bytes], int] = {}


def _swallow(future: asyncio.Future[Any]) -> None:
    # A delivery we stopped waiting for may still fail later; the event is in the outbox by then.
    if not future.cancelled():
        future.exception()


async def _partitions(producer: Any, topic: str) -> list[int]:
    return sorted(await producer.partitions_for(topic))


def _partition_of(producer: Any, topic: str, partitions: list[int], key: bytes) -> int:
    cache_key = (topic, len(partitions), key)
    partition = _partition_cache.get(cache_key)
    if partition is None:
        if len(_partition_cache) > _PARTITION_CACHE_LIMIT:
            _partition_cache.clear()
        partition = _partition_cache[cache_key] = producer._partitioner(key, partitions, partitions)
    return partition


async def _send_batches(
    publisher: Publisher, topic: str, records: Sequence[EventRecord]
) -> list[tuple[asyncio.Future[Any], list[str]]]:
    # Ingest is the one service that builds record batches itself (one per partition).
    producer: Any = publisher.producer
    partitions = await _partitions(producer, topic)
    by_partition: dict[int, list[tuple[str, bytes, bytes, Any]]] = defaultdict(list)
    for record in records:
        key, value, headers = record.kafka()
        by_partition[_partition_of(producer, topic, partitions, key)].append((record.event_id, key, value, headers))
    sent: list[tuple[asyncio.Future[Any], list[str]]] = []
    for partition, items in by_partition.items():
        batch = producer.create_batch()
        ids: list[str] = []
        for event_id, key, value, headers in items:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                sent.append((await producer.send_batch(batch, topic, partition=partition), ids))
                batch, ids = producer.create_batch(), []
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"event {event_id} is larger than a producer batch")
            ids.append(event_id)
        if ids:
            sent.append((await producer.send_batch(batch, topic, partition=partition), ids))
    return sent


# aiokafka queues one builder batch per partition at a time (the next waits until the previous one is
# drained), so many small concurrent requests must share the producer's batches through send() instead.
BATCH_PATH_MIN_RECORDS = 64


async def _send_each(
    publisher: Publisher, topic: str, records: Sequence[EventRecord]
) -> list[tuple[asyncio.Future[Any], list[str]]]:
    sent = []
    for record in records:
        key, value, headers = record.kafka()
        sent.append((await publisher.publish_raw(topic, key, value, headers), [record.event_id]))
    return sent


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
    sent: list[tuple[asyncio.Future[Any], list[str]]] = []
    try:
        async with asyncio.timeout(timeout_s):
            if len(records) >= BATCH_PATH_MIN_RECORDS:
                sent = await _send_batches(publisher, topic, records)
            else:
                sent = await _send_each(publisher, topic, records)
    except (TimeoutError, KafkaError, OSError) as exc:
        log.warning("could not hand events to the producer", extra={"error": repr(exc)})
    if sent:
        await asyncio.wait([future for future, _ in sent], timeout=max(0.0, deadline - loop.time()))
    delivery = Delivery()
    for future, ids in sent:
        if not future.done():
            future.add_done_callback(_swallow)
            delivery.in_doubt.update(dict.fromkeys(ids, future))
        elif not future.cancelled() and future.exception() is None:
            delivery.acked += ids
    settled = set(delivery.acked)
    delivery.failed = [r.event_id for r in records if r.event_id not in settled]
    return delivery
