"""Transactional outbox: derived events are written with the state change, then relayed to Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from operator import attrgetter

import orjson
from aiokafka.errors import KafkaError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common import metrics
from libs.common.db import MessagingTables
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher, Record

log = logging.getLogger(__name__)

# While draining a backlog the relay loops every few milliseconds; counting the rows left each time cost the
# database more than a gauge scraped every 15 s is worth.
BACKLOG_REPORT_INTERVAL_S = 5.0
PURGE_SENT_EVERY_S = 600.0


class Outbox:
    """Collects events inside a transaction; they are rows until the relay has published them."""

    def __init__(self, tables: MessagingTables, topic_prefix: str) -> None:
        self.table = tables.outbox
        self.topic_prefix = topic_prefix
        # One statement over arrays whatever the number of events (a consumer batch writes hundreds).
        self._insert = text(
            f"INSERT INTO {self.table.fullname} (topic, key, value, headers) "
            "SELECT u.topic, u.key, u.value, CAST(u.headers AS jsonb) "
            "FROM unnest(CAST(:topics AS text[]), CAST(:keys AS bytea[]), CAST(:values AS bytea[]), "
            "CAST(:headers AS text[])) AS u(topic, key, value, headers)"
        )

    async def add(self, session: AsyncSession, topic: str, *events: CloudEvent) -> None:
        """`topic` is the base name from libs.common.topics."""
        if not events:
            return
        keys, values, headers = [], [], []
        for event in events:
            key, value, kafka_headers = event.to_kafka()
            keys.append(key)
            values.append(value)
            headers.append(orjson.dumps([[name, raw.decode()] for name, raw in kafka_headers]).decode())
        params = {"topics": [self.topic_prefix + topic] * len(events), "keys": keys, "values": values}
        await session.execute(self._insert, {**params, "headers": headers})


class OutboxRelay:
    """Publishes outbox rows in id order, moving them to outbox_sent once acknowledged (deleting them when no
    redelivery window is kept); several replicas share the work through SKIP LOCKED."""

    def __init__(
        self,
        tables: MessagingTables,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        *,
        service: str,
        poll_interval_s: float,
        batch_size: int,
        redelivery_window_s: float = 0.0,
    ) -> None:
        self.table = tables.outbox
        self.sent = tables.outbox_sent
        self.redelivery_window_s = redelivery_window_s
        self._purged_at = -PURGE_SENT_EVERY_S
        self.sessions = sessions
        self.publisher = publisher
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self._stopping = asyncio.Event()
        self._backlog_reported_at = -BACKLOG_REPORT_INTERVAL_S
        table = self.table
        # Rows leave the table as they are claimed; the transaction stays open until the broker acknowledged
        # them, so a failed publish rolls the delete back and the rows are claimed again.
        claim = (
            f"DELETE FROM {table.fullname} WHERE id IN (SELECT id FROM {table.fullname} ORDER BY id "
            "LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id, topic, key, value, headers"
        )
        if redelivery_window_s > 0:
            # The claimed rows move to outbox_sent in the same statement: committed only with the acknowledgement.
            claim = (
                f"WITH claimed AS ({claim}), kept AS (INSERT INTO {self.sent.fullname} "
                "(id, topic, key, value, headers) SELECT id, topic, key, value, headers FROM claimed) "
                "SELECT id, topic, key, value, headers FROM claimed"
            )
        self._claim = text(claim).columns(table.c.id, table.c.topic, table.c.key, table.c.value, table.c.headers)
        # Back into the outbox under their own ids, so the relay publishes them again in their first order.
        self._rearm = text(
            f"WITH moved AS (DELETE FROM {self.sent.fullname} WHERE sent_at >= now() - make_interval(secs => :window) "
            f"RETURNING id, topic, key, value, headers) INSERT INTO {table.fullname} (id, topic, key, value, headers) "
            "SELECT id, topic, key, value, headers FROM moved ORDER BY id"
        )
        self._purge = text(f"DELETE FROM {self.sent.fullname} WHERE sent_at < now() - make_interval(secs => :window)")

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                published = await self.relay_once()
            except (KafkaError, OSError, TimeoutError) as exc:
                log.warning("outbox relay cannot publish, will retry", extra={"error": repr(exc)})
                published = 0
                await self._report_backlog_while_failing()
                await self._sleep(1.0)
            except Exception:
                log.exception("outbox relay failed, will retry")
                published = 0
                await self._report_backlog_while_failing()
                await self._sleep(1.0)
            if published < self.batch_size:
                await self._sleep(self.poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def redeliver(self) -> int:
        """Re-queues what was published within the redelivery window (the broker lost it); returns how many."""
        if self.redelivery_window_s <= 0:
            return 0
        async with self.sessions() as session, session.begin():
            result = await session.execute(self._rearm, {"window": self.redelivery_window_s})
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            log.info("re-queued published events for a broker that lost them", extra={"count": count})
        return count

    async def purge_sent(self) -> int:
        """Forgets published rows older than the redelivery window."""
        if self.redelivery_window_s <= 0:
            return 0
        async with self.sessions() as session, session.begin():
            result = await session.execute(self._purge, {"window": self.redelivery_window_s})
        self._purged_at = time.monotonic()
        return int(getattr(result, "rowcount", 0) or 0)

    async def relay_once(self) -> int:
        if time.monotonic() - self._purged_at >= PURGE_SENT_EVERY_S:
            await self.purge_sent()
        async with self.sessions() as session, session.begin():
            # DELETE … RETURNING has no order of its own; publish in id order.
            rows = sorted((await session.execute(self._claim, {"limit": self.batch_size})).all(), key=attrgetter("id"))
            if not rows:
                metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
                return 0
            by_topic: dict[str, list[Record]] = {}
            produced: Counter[tuple[str, str]] = Counter()
            for row in rows:
                headers = [(name, value.encode()) for name, value in row.headers]
                by_topic.setdefault(row.topic, []).append((row.key, row.value, headers))
                produced[(row.topic, dict(row.headers).get("ce_type", "unknown"))] += 1
            await asyncio.gather(*await self.publisher.send_by_topic(by_topic))
        for (topic, event_type), n in produced.items():
            metrics.EVENTS_PRODUCED.labels(self.service, topic, event_type).inc(n)
        if len(rows) < self.batch_size:
            # Fewer than asked for: this relay has just drained what it could see.
            metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
        elif time.monotonic() - self._backlog_reported_at >= BACKLOG_REPORT_INTERVAL_S:
            await self._report_backlog()
        return len(rows)

    async def _report_backlog_while_failing(self) -> None:
        """Rows pile up while publishing fails; the gauge must show them (the outbox-not-draining alert)."""
        try:
            await self._report_backlog()
        except Exception as exc:  # the database may be what failed
            log.debug("cannot count the outbox backlog", extra={"error": repr(exc)})

    async def _report_backlog(self) -> None:
        async with self.sessions() as session:
            backlog = await session.scalar(select(func.count()).select_from(self.table))
        metrics.OUTBOX_BACKLOG.labels(self.service).set(backlog or 0)
        self._backlog_reported_at = time.monotonic()
