"""The shared outbox relay against the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.common.db import MessagingTables, create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.kafka import BATCH_PATH_MIN_RECORDS, Publisher, ensure_topics
from libs.common.outbox import Outbox, OutboxRelay
from libs.common.topics import PROFILE_CHANGES, SCORE_CHANGES
from tests.conftest import Isolation

metadata = MetaData(schema="relaytest")
tables = MessagingTables(metadata)


async def make_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS relaytest")
        await connection.run_sync(metadata.create_all)


async def read_all(isolated: Isolation, topic: str, count: int) -> list[tuple[int, bytes, dict[str, bytes]]]:
    """(partition, key, headers) of the first `count` records, in offset order within each partition."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=isolated.stack.broker.bootstrap, auto_offset_reset="earliest", group_id=topic + "-r"
    )
    await consumer.start()
    found: list[tuple[int, bytes, dict[str, bytes]]] = []
    try:
        for _ in range(60):
            for partition, records in (await consumer.getmany(timeout_ms=500)).items():
                found += [(partition.partition, record.key or b"", dict(record.headers)) for record in records]
            if len(found) >= count:
                break
    finally:
        await consumer.stop()
    return found


@dataclass
class RelayRig:
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    relay: OutboxRelay

    async def outbox_rows(self) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(tables.outbox)) or 0)


@pytest.fixture
async def rig(isolated: Isolation) -> AsyncIterator[RelayRig]:
    """A relay on the `relaytest` schema of a fresh database; the publisher it ends with is stopped after."""
    settings = isolated.settings("relaytest")
    engine = create_engine(settings)
    await make_schema(engine)
    await ensure_topics(settings)
    sessions = session_factory(engine)
    publisher = Publisher(settings)
    await publisher.start()
    relay = OutboxRelay(tables, sessions, publisher, service="relaytest", poll_interval_s=0.1, batch_size=500)
    try:
        yield RelayRig(sessions, Outbox(tables, isolated.prefix), relay)
    finally:
        await relay.publisher.stop()
        await engine.dispose()


async def test_a_large_backlog_is_published_once_in_key_order_on_the_key_partition(
    isolated: Isolation, rig: RelayRig
) -> None:
    sessions, outbox, relay, publisher = rig.sessions, rig.outbox, rig.relay, rig.relay.publisher
    now = datetime.now(UTC)
    # Enough rows for the batched producer path on one topic, a handful (the per-record path) on the other.
    updates = [
        CloudEvent(id=f"u{n:03d}", source="t", type="profile.updated", subject=f"c-{n % 7}", time=now, data={"n": n})
        for n in range(3 * BATCH_PATH_MIN_RECORDS)
    ]
    scores = [
        CloudEvent(id=f"s{n}", source="t", type="score.changed", subject=f"c-{n}", time=now, data={}) for n in range(5)
    ]
    async with sessions() as session, session.begin():
        await outbox.add(session, PROFILE_CHANGES, *updates)
        await outbox.add(session, SCORE_CHANGES, *scores)
    assert await relay.relay_once() == len(updates) + len(scores)
    assert await relay.relay_once() == 0
    assert await rig.outbox_rows() == 0

    published = await read_all(isolated, isolated.prefix + PROFILE_CHANGES, len(updates))
    assert sorted(headers["ce_id"].decode() for _, _, headers in published) == [e.id for e in updates]
    # Every key on the one partition the producer's own send() picks for it, in the order written.
    partitions = sorted(await publisher.producer.partitions_for(isolated.prefix + PROFILE_CHANGES))
    for key in {key for _, key, _ in published}:
        expected = publisher.producer._partitioner(key, partitions, partitions)
        of_key = [(partition, headers["ce_id"]) for partition, k, headers in published if k == key]
        assert {partition for partition, _ in of_key} == {expected}
        assert [ce_id for _, ce_id in of_key] == sorted(ce_id for _, ce_id in of_key)
    assert len({partition for partition, _, _ in published}) == len(partitions)
    scored = await read_all(isolated, isolated.prefix + SCORE_CHANGES, len(scores))
    assert sorted(headers["ce_id"].decode() for _, _, headers in scored) == [e.id for e in scores]


async def test_rows_stay_in_the_outbox_when_the_broker_does_not_take_them(isolated: Isolation, rig: RelayRig) -> None:
    events = [CloudEvent(f"e{n}", "t", "profile.updated", "c", datetime.now(UTC), {}) for n in range(3)]
    async with rig.sessions() as session, session.begin():
        await rig.outbox.add(session, PROFILE_CHANGES, *events)
    await rig.relay.publisher.stop()  # a producer that can no longer send: the claim must roll back
    with pytest.raises(KafkaError):
        await rig.relay.relay_once()
    assert await rig.outbox_rows() == len(events)

    rig.relay.publisher = Publisher(isolated.settings("relaytest"))
    await rig.relay.publisher.start()
    assert await rig.relay.relay_once() == len(events)
    assert await rig.outbox_rows() == 0
    published = await read_all(isolated, isolated.prefix + PROFILE_CHANGES, len(events))
    assert [headers["ce_id"].decode() for _, _, headers in published] == [event.id for event in events]


async def test_published_rows_are_kept_and_re_sent_in_their_first_order_under_the_same_ids(
    isolated: Isolation, rig: RelayRig
) -> None:
    relay = OutboxRelay(
        tables,
        rig.sessions,
        rig.relay.publisher,
        service="relaytest",
        poll_interval_s=0.1,
        batch_size=500,
        redelivery_window_s=3600,
    )
    first = [CloudEvent(f"a{n}", "t", "profile.updated", "c-1", datetime.now(UTC), {"n": n}) for n in range(4)]
    async with rig.sessions() as session, session.begin():
        await rig.outbox.add(session, PROFILE_CHANGES, *first)
    assert await relay.relay_once() == len(first)
    assert await rig.outbox_rows() == 0
    async with rig.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(tables.outbox_sent)) == len(first)

    # Written while the broker was away: must go out after the re-sent ones, as it was written after them.
    later = CloudEvent("b0", "t", "profile.updated", "c-1", datetime.now(UTC), {})
    async with rig.sessions() as session, session.begin():
        await rig.outbox.add(session, PROFILE_CHANGES, later)
    assert await relay.redeliver() == len(first)
    assert await relay.relay_once() == len(first) + 1
    published = await read_all(isolated, isolated.prefix + PROFILE_CHANGES, 2 * len(first) + 1)
    ids = [headers["ce_id"].decode() for _, _, headers in published]
    assert ids == [e.id for e in first] + [e.id for e in first] + [later.id]
    assert await relay.purge_sent() == 0  # all within the window
