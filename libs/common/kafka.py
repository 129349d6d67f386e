"""Kafka producer and topic administration shared by every service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownError, UnsupportedVersionError
from aiokafka.helpers import create_ssl_context

from libs.common import metrics
from libs.common.envelope import CloudEvent, KafkaHeaders
from libs.common.settings import Settings
from libs.common.topics import ALL_TOPICS, dlq_of, qualified

log = logging.getLogger(__name__)

# key, value, headers
Record = tuple[bytes, bytes, KafkaHeaders]
# A delivery future and the positions (in the records handed over) of the records it acknowledges.
Sent = tuple[asyncio.Future[Any], list[int]]

# aiokafka queues one builder batch per partition at a time (the next waits until the previous one is drained),
# so few records, or many small concurrent callers, share the producer's own batches through send() instead.
BATCH_PATH_MIN_RECORDS = 64
_PARTITION_CACHE_LIMIT = 200_000
# How a broker that cannot give out producer ids answers InitProducerId (Tansu: UnknownError).
BROKER_WITHOUT_IDEMPOTENCE: tuple[type[KafkaError], ...] = (UnknownError, UnsupportedVersionError)


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection and security arguments every aiokafka client of a service takes."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_cafile, certfile=settings.kafka_ssl_certfile, keyfile=settings.kafka_ssl_keyfile
        )
    if settings.kafka_security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "SCRAM-SHA-512"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    return options


class Publisher:
    """acks=all producer; `publish` returns only once the broker has the event."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service = settings.service
        self.idempotent = settings.kafka_idempotence is not False
        self._producer = self._new_producer()
        self._started = False
        self._partition_cache: dict[tuple[str, int, bytes], int] = {}

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self.settings),
            acks="all",
            linger_ms=self.settings.kafka_linger_ms,
            max_batch_size=65536,
            request_timeout_ms=10_000,
            enable_idempotence=self.idempotent,
        )

    async def start(self) -> None:
        try:
            await self._producer.start()
        except BROKER_WITHOUT_IDEMPOTENCE as exc:
            if self.settings.kafka_idempotence is not None or not self.idempotent:
                raise
            # Consumers dedupe on ce_id, so at-least-once publishing stays correct, only less economical.
            log.warning("the broker has no idempotent producer; publishing without it", extra={"error": repr(exc)})
            await self._producer.stop()
            self.idempotent = False
            self._producer = self._new_producer()
            await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        # Also when never started (the broker was unreachable): aiokafka reports every producer not stopped as
        # unclosed when it is collected. Stopping twice is a no-op.
        await self._producer.stop()
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    @property
    def producer(self) -> AIOKafkaProducer:
        """The underlying client, for callers that build record batches themselves (ingest's bulk path)."""
        return self._producer

    def topic(self, base: str) -> str:
        return qualified(self.settings.topic_prefix, base)

    async def publish(self, topic: str, event: CloudEvent) -> None:
        """`topic` is the full name (prefix included)."""
        await self.publish_many([(topic, event)])

    async def publish_many(self, items: Sequence[tuple[str, CloudEvent]]) -> None:
        """Sends all, then waits for every acknowledgement, so one batch costs one round trip."""
        by_topic: dict[str, list[Record]] = {}
        for topic, event in items:
            by_topic.setdefault(topic, []).append(event.to_kafka())
        try:
            await asyncio.gather(*await self.send_by_topic(by_topic))
        except KafkaError:
            for topic, _ in items:
                metrics.PRODUCE_ERRORS.labels(self.service, topic).inc()
            raise
        for topic, event in items:
            metrics.EVENTS_PRODUCED.labels(self.service, topic, event.type).inc()

    async def publish_raw(self, topic: str, key: bytes, value: bytes, headers: KafkaHeaders) -> asyncio.Future[object]:
        """Queues one record and returns its delivery future (dead-lettering)."""
        delivery: asyncio.Future[object] = await self._producer.send(topic, value=value, key=key, headers=headers)
        return delivery

    async def send_by_topic(self, records_by_topic: Mapping[str, Sequence[Record]]) -> list[asyncio.Future[Any]]:
        """`send_records` for each topic; the delivery futures of all of them."""
        futures: list[asyncio.Future[Any]] = []
        for topic, records in records_by_topic.items():
            futures += [future for future, _ in await self.send_records(topic, records)]
        return futures

    async def send_records(self, topic: str, records: Sequence[Record]) -> list[Sent]:
        """Hands every record to the producer without waiting for acknowledgements.

        Many records are grouped by partition and appended to producer batches directly (`create_batch` /
        `send_batch`): aiokafka's per-record `send()` costs ~25 µs of Python each, appending to a batch a few.
        Partitions come from the producer's own partitioner (murmur2 of the key, as the Java client and `send()`
        do), so a customer's events land on the same partition whichever path published them.
        """
        if len(records) < BATCH_PATH_MIN_RECORDS:
            return [
                (await self._producer.send(topic, value=value, key=key, headers=headers), [position])
                for position, (key, value, headers) in enumerate(records)
            ]
        producer: Any = self._producer
        partitions = sorted(await producer.partitions_for(topic))
        by_partition: dict[int, list[int]] = {}
        for position, (key, _, _) in enumerate(records):
            by_partition.setdefault(self._partition_of(topic, partitions, key), []).append(position)
        sent: list[Sent] = []
        for partition, positions in by_partition.items():
            batch, carried = producer.create_batch(), list[int]()
            for position in positions:
                key, value, headers = records[position]
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    sent.append((await producer.send_batch(batch, topic, partition=partition), carried))
                    batch, carried = producer.create_batch(), []
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        raise ValueError(f"record {position} for {topic} is larger than a producer batch")
                carried.append(position)
            if carried:
                sent.append((await producer.send_batch(batch, topic, partition=partition), carried))
        return sent

    def _partition_of(self, topic: str, partitions: list[int], key: bytes) -> int:
        cache_key = (topic, len(partitions), key)
        partition = self._partition_cache.get(cache_key)
        if partition is None:
            if len(self._partition_cache) > _PARTITION_CACHE_LIMIT:
                self._partition_cache.clear()
            partition = self._partition_cache[cache_key] = self._producer._partitioner(key, partitions, partitions)
        return partition


def all_topic_names(prefix: str, bases: Iterable[str] = ALL_TOPICS) -> list[str]:
    names: list[str] = []
    for base in bases:
        names += [qualified(prefix, base), qualified(prefix, dlq_of(base))]
    return names


async def ensure_topics(settings: Settings, bases: Iterable[str] = ALL_TOPICS) -> None:
    """Creates topics and their DLQs explicitly: auto-created ones get a broker default partition count."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication)
            for name in all_topic_names(settings.topic_prefix, bases)
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another replica won the race
            log.info("created topics", extra={"topics": [t.name for t in wanted]})
    finally:
        await admin.close()


async def broker_reachable(settings: Settings, timeout_s: float = 2.0) -> bool:
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
        return True
    except (KafkaError, TimeoutError, OSError):
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass


async def ping(publisher: Publisher, timeout_s: float = 2.0) -> bool:
    """Readiness: the running producer can still fetch cluster metadata."""
    if not publisher.started:
        return False
    try:
        await asyncio.wait_for(publisher.producer.client.fetch_all_metadata(), timeout_s)
        return True
    except (KafkaError, TimeoutError, OSError):
        return False
