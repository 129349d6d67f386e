"""The one consumer loop every service uses.

Per partition batch: decode, drop already-processed ce_ids (inbox), run the handler and the inbox insert
in one transaction, commit offsets only after that transaction commits. A batch that fails is retried
event by event, so one poison message is isolated, retried a bounded number of times, then
dead-lettered with the reason while the rest of the partition moves on. Infrastructure failures
(database or broker unreachable) are not the message's fault: those rewind and wait instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from sqlalchemy import ARRAY, Text, bindparam, func, literal, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common import metrics
from libs.common.db import MessagingTables
from libs.common.envelope import CloudEvent, EnvelopeError
from libs.common.envelope import PoisonEvent as PoisonEvent  # handlers raise it; it is the loop's vocabulary
from libs.common.kafka import Publisher, client_options
from libs.common.logs import current_customer_id, current_event_id
from libs.common.outbox import Outbox
from libs.common.personal import PersonalData, strip_personal
from libs.common.settings import Settings
from libs.common.topics import dlq_of, qualified

log = logging.getLogger(__name__)

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    OSError,
    TimeoutError,
    KafkaError,
)


CONSUMER_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HandlerContext:
    session: AsyncSession
    outbox: Outbox
    # Keys and blind indexes for personal data kept at rest; None without a master key.
    personal: PersonalData | None = None

    async def emit(self, topic: str, *events: CloudEvent) -> None:
        await self.outbox.add(self.session, topic, *events)


BatchHandler = Callable[[HandlerContext, Sequence[CloudEvent]], Awaitable[None]]
EventHandler = Callable[[HandlerContext, CloudEvent], Awaitable[None]]


def one_by_one(handler: EventHandler) -> BatchHandler:
    async def handle(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        for event in events:
            current_event_id.set(event.id)
            current_customer_id.set(event.subject)
            await handler(ctx, event)

    return handle


@dataclass(frozen=True)
class Subscription:
    """`name` keys the inbox and the consumer group; `event_types` None means every type."""

    name: str
    topics: tuple[str, ...]
    handler: BatchHandler
    event_types: frozenset[str] | None = None
    # False for a consumer that has no use for personal data: its sealed fields are dropped unopened, which costs
    # no key request and no decryption (scoring and insights read no name, email or phone).
    personal_data: bool = True


class _MembershipListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Sets `joined` once the group has given this member its share, even an empty one (more members than
    partitions): from then on the consumer reads what arrives."""

    def __init__(self, joined: asyncio.Event) -> None:
        self.joined = joined

    async def on_partitions_revoked(self, revoked: object) -> None:
        return None

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.joined.set()


class ConsumerLoop:
    def __init__(
        self,
        subscription: Subscription,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        publisher: Publisher,
        outbox: Outbox,
        personal: PersonalData | None = None,
    ) -> None:
        self.subscription = subscription
        self.personal = personal
        self.settings = settings
        self.sessions = sessions
        self.inbox = tables.inbox
        self.publisher = publisher
        self.outbox = outbox
        self.service = settings.service
        self.consumer_name = f"{settings.service}.{subscription.name}"
        self.group_id = qualified(settings.topic_prefix, self.consumer_name)
        self._stopping = asyncio.Event()
        self._restart = asyncio.Event()
        self.assigned = asyncio.Event()
        # A member of its group with its partitions assigned: what readiness waits for.
        self.joined = asyncio.Event()
        self._live_clock = settings.clock_mode == "live"
        self._claim_statement = (
            pg_insert(self.inbox)
            .from_select(
                ["event_id", "consumer"],
                select(func.unnest(bindparam("ids", type_=ARRAY(Text))), literal(self.consumer_name, Text)),
            )
            .on_conflict_do_nothing()
            .returning(self.inbox.c.event_id)
        )

    def stop(self) -> None:
        self._stopping.set()

    def restart(self) -> None:
        """A new consumer after the broker restarted: the old one stalls on a broker that forgot its group."""
        self._restart.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._restart.clear()
            await self._consume_until_stopped_or_restarted()

    async def _consume_until_stopped_or_restarted(self) -> None:
        topics = [qualified(self.settings.topic_prefix, t) for t in self.subscription.topics]
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.consumer_batch_size,
            session_timeout_ms=self.settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=self.settings.consumer_heartbeat_interval_ms,
        )
        consumer.subscribe(topics, listener=_MembershipListener(self.joined))
        await consumer.start()
        try:
            while not self._stopping.is_set() and not self._restart.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=self.settings.consumer_batch_size)
                if consumer.assignment():
                    self.assigned.set()
                for tp, records in batches.items():
                    if self._stopping.is_set() or self._restart.is_set():
                        break
                    await self._run_partition_batch(consumer, tp, records)
        finally:
            if self._restart.is_set():
                # Leaving a broker that no longer knows the group can hang: give up on it after a while.
                try:
                    await asyncio.wait_for(consumer.stop(), CONSUMER_STOP_TIMEOUT_S)
                except (TimeoutError, KafkaError) as exc:
                    log.warning("abandoned a consumer of a restarted broker", extra={"error": repr(exc)})
            else:
                await consumer.stop()

    async def _run_partition_batch(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        started = time.perf_counter()
        try:
            await self._process(records)
        except INFRASTRUCTURE_ERRORS as exc:
            log.warning("infrastructure unavailable; rewinding partition", extra={"error": repr(exc), "tp": str(tp)})
            consumer.seek(tp, records[0].offset)
            await asyncio.sleep(self.settings.consumer_retry_backoff_s * 5)
            return
        metrics.HANDLER_LATENCY.labels(self.service, tp.topic).observe(time.perf_counter() - started)
        try:
            await consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError) as exc:
            # Partition moved to another member mid-batch; it will redeliver and the inbox dedupes.
            log.warning("offset commit failed after rebalance", extra={"error": repr(exc), "tp": str(tp)})
            return
        except KafkaError as exc:
            # A restarted broker no longer knows the topic or the group; the batch is in the inbox, so what comes
            # again is a duplicate. The service restarts this consumer once it notices the restart.
            log.warning("offset commit failed", extra={"error": repr(exc), "tp": str(tp)})
            return
        highwater = consumer.highwater(tp)
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                max(0, highwater - records[-1].offset - 1)
            )

    async def _process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        wanted = self.subscription.event_types
        events: list[tuple[ConsumerRecord[bytes, bytes], CloudEvent]] = []
        for record in records:
            try:
                event = CloudEvent.from_kafka(record.value, record.headers)
            except EnvelopeError as exc:
                await self._dead_letter(record, exc, attempts=1)
                continue
            if wanted is not None and event.type not in wanted:
                metrics.EVENTS_CONSUMED.labels(self.service, record.topic, event.type, "ignored").inc()
                continue
            events.append((record, event))
        if not events:
            return
        if not self.subscription.personal_data:
            strip_personal([event for _, event in events])
        elif self.personal is not None:
            await self.personal.open_events([event for _, event in events])
        try:
            await self._handle_in_one_transaction(events)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            log.info("batch failed; isolating the failing event", exc_info=True)
            for record, event in events:
                await self._handle_with_retries(record, event)

    async def _handle_in_one_transaction(
        self, events: Sequence[tuple[ConsumerRecord[bytes, bytes], CloudEvent]]
    ) -> None:
        async with self.sessions() as session, session.begin():
            fresh_ids = await self._claim(session, [event.id for _, event in events])
            fresh: list[CloudEvent] = []
            for _, event in events:
                if event.id in fresh_ids:
                    fresh_ids.discard(event.id)  # the same id twice in one batch is still one effect
                    fresh.append(event)
            if fresh:
                await self.subscription.handler(HandlerContext(session, self.outbox, self.personal), fresh)
        fresh_set = {id(event) for event in fresh}
        if self._live_clock and fresh:
            self._observe_age(events, fresh_set)
        outcomes: Counter[tuple[str, str, str]] = Counter(
            (record.topic, event.type, "processed" if id(event) in fresh_set else "duplicate")
            for record, event in events
        )
        for (topic, event_type, outcome), n in outcomes.items():
            metrics.EVENTS_CONSUMED.labels(self.service, topic, event_type, outcome).inc(n)

    def _observe_age(self, events: Sequence[tuple[ConsumerRecord[bytes, bytes], CloudEvent]], fresh: set[int]) -> None:
        now = datetime.now(UTC)
        for record, event in events:
            if id(event) in fresh:
                metrics.EVENT_AGE.labels(self.service, record.topic).observe(
                    max(0.0, (now - event.time).total_seconds())
                )

    async def _claim(self, session: AsyncSession, event_ids: list[str]) -> set[str]:
        """Inserts ids into the inbox; returns those not processed before."""
        # unnest keeps one statement shape for every batch size, so SQLAlchemy compiles it once.
        result = await session.execute(self._claim_statement, {"ids": list(dict.fromkeys(event_ids))})
        return set(result.scalars())

    async def _handle_with_retries(self, record: ConsumerRecord[bytes, bytes], event: CloudEvent) -> None:
        attempts = self.settings.consumer_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                await self._handle_in_one_transaction([(record, event)])
                return
            except INFRASTRUCTURE_ERRORS:
                raise
            except PoisonEvent as exc:
                await self._dead_letter(record, exc, attempts=attempt)
                return
            except Exception as exc:
                if attempt == attempts:
                    log.exception("event failed %d times; dead-lettering", attempts)
                    await self._dead_letter(record, exc, attempts=attempt)
                    return
                metrics.EVENTS_CONSUMED.labels(self.service, record.topic, event.type, "retried").inc()
                await asyncio.sleep(self.settings.consumer_retry_backoff_s * 2 ** (attempt - 1))

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: BaseException, attempts: int) -> None:
        headers = [
            *record.headers,
            ("dlq_error", f"{type(error).__name__}: {error}"[:2000].encode()),
            ("dlq_consumer", self.consumer_name.encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_attempts", str(attempts).encode()),
        ]
        delivery = await self.publisher.publish_raw(
            dlq_of(record.topic), key=record.key or b"", value=record.value or b"", headers=headers
        )
        await delivery  # a dead letter that is not durable would be a lost message
        metrics.DEAD_LETTERED.labels(self.service, record.topic).inc()
        event_type = dict(record.headers).get("ce_type", b"unknown").decode(errors="replace")
        metrics.EVENTS_CONSUMED.labels(self.service, record.topic, event_type, "dead_lettered").inc()
        log.warning(
            "dead-lettered",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "error": str(error)},
        )
