"""Kafka producer and topic administration shared by every service."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from libs.common import metrics
from libs.common.envelope import CloudEvent, KafkaHeaders
from libs.common.settings import Settings
from libs.common.topics import ALL_TOPICS, dlq_of, qualified

log = logging.getLogger(__name__)


class Publisher:
    """acks=all producer; `publish` returns only once the broker has the event."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.service = settings.service
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            linger_ms=2,
            max_batch_size=65536,
            request_timeout_ms=10_000,
            # Tansu has no idempotent producer; consumers dedupe on ce_id instead.
            enable_idempotence=False,
        )
        self._started = False

    async def start(self) -> None:
        await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
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
        futures = []
        for topic, event in items:
            key, value, headers = event.to_kafka()
            futures.append(await self._producer.send(topic, value=value, key=key, headers=headers))
        try:
            await asyncio.gather(*futures)
        except KafkaError:
            for topic, _ in items:
                metrics.PRODUCE_ERRORS.labels(self.service, topic).inc()
            raise
        for topic, event in items:
            metrics.EVENTS_PRODUCED.labels(self.service, topic, event.type).inc()

    async def publish_raw(self, topic: str, key: bytes, value: bytes, headers: KafkaHeaders) -> asyncio.Future[object]:
        """Queues one record and returns its delivery future (outbox relay and dead-lettering)."""
        delivery: asyncio.Future[object] = await self._producer.send(topic, value=value, key=key, headers=headers)
        return delivery


def all_topic_names(prefix: str, bases: Iterable[str] = ALL_TOPICS) -> list[str]:
    names: list[str] = []
    for base in bases:
        names += [qualified(prefix, base), qualified(prefix, dlq_of(base))]
    return names


async def ensure_topics(settings: Settings, bases: Iterable[str] = ALL_TOPICS) -> None:
    """Creates topics and their DLQs explicitly: auto-created ones get a broker default partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
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
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(timeout_s * 1000))
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
