"""The shared consumer loop against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer
from sqlalchemy import Column, MetaData, Table, Text, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.consumer import ConsumerLoop, HandlerContext, PoisonEvent, Subscription, one_by_one
from libs.common.db import MessagingTables, create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher, ensure_topics
from libs.common.outbox import Outbox
from libs.common.topics import CUSTOMER_EVENTS, dlq_of
from tests.conftest import Isolation

metadata = MetaData(schema="looptest")
tables = MessagingTables(metadata)
effects = Table("effects", metadata, Column("event_id", Text, primary_key=True), Column("customer_id", Text))


async def record_effect(ctx: HandlerContext, event: CloudEvent) -> None:
    if event.type == "explode":
        raise RuntimeError(f"cannot handle {event.id}")
    if event.type == "reject":
        raise PoisonEvent("rejected by the handler")
    # No ON CONFLICT: a second effect for the same event would fail loudly here.
    await ctx.session.execute(effects.insert().values(event_id=event.id, customer_id=event.subject))


def event(event_id: str, type_: str = "purchase", customer: str = "c-1") -> CloudEvent:
    return CloudEvent(id=event_id, source="test", type=type_, subject=customer, time=datetime.now(UTC), data={"n": 1})


async def make_schema(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS looptest")
        await connection.run_sync(metadata.create_all)


async def effect_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        return list((await connection.execute(select(effects.c.event_id).order_by(effects.c.event_id))).scalars())


async def read_dlq(isolated: Isolation, count: int, timeout_s: float = 30) -> list[dict[str, bytes]]:
    consumer = AIOKafkaConsumer(
        isolated.prefix + dlq_of(CUSTOMER_EVENTS),
        bootstrap_servers=isolated.stack.broker.bootstrap,
        auto_offset_reset="earliest",
        group_id=isolated.prefix + "dlq-reader",
    )
    await consumer.start()
    found: list[dict[str, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < count and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found += [dict(record.headers) for record in records]
    finally:
        await consumer.stop()
    return found


async def wait_for(predicate_coro: object, timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if await predicate_coro():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_redelivery_has_no_second_effect_and_poison_goes_to_the_dlq(isolated: Isolation) -> None:
    settings = isolated.settings("looptest", consumer_batch_size=50)
    engine = create_engine(settings)
    await make_schema(engine)
    await ensure_topics(settings)
    publisher = Publisher(settings)
    await publisher.start()
    topic = isolated.prefix + CUSTOMER_EVENTS
    subscription = Subscription("events", (CUSTOMER_EVENTS,), one_by_one(record_effect))

    def new_loop() -> ConsumerLoop:
        return ConsumerLoop(subscription, settings, session_factory(engine), tables, publisher, Outbox(tables, ""))

    try:
        # The same customer keeps everything on one partition, so order within it is what we sent.
        batch: Sequence[CloudEvent] = [
            event("e1"),
            event("e2"),
            event("e1"),  # redelivered duplicate in the same batch
            event("bad", "explode"),
            event("rejected", "reject"),
            event("e3"),
        ]
        await publisher.publish_many([(topic, e) for e in batch])
        not_an_event = await publisher.publish_raw(topic, b"c-1", b"\xff garbage", [("ce_id", b"x")])
        await not_an_event
        await publisher.publish(topic, event("e4"))

        loop = new_loop()
        task = asyncio.create_task(loop.run())

        async def all_good_effects() -> bool:
            return await effect_ids(engine) == ["e1", "e2", "e3", "e4"]

        await wait_for(all_good_effects)
        dead = await read_dlq(isolated, 3)
        loop.stop()
        await task

        by_id = {headers.get("ce_id"): headers for headers in dead}
        assert set(by_id) == {b"bad", b"rejected", b"x"}
        assert b"RuntimeError: cannot handle bad" in by_id[b"bad"]["dlq_error"]
        assert by_id[b"bad"]["dlq_attempts"] == str(settings.consumer_max_attempts).encode()
        assert by_id[b"rejected"]["dlq_attempts"] == b"1"  # PoisonEvent is not retried
        assert b"missing CloudEvents headers" in by_id[b"x"]["dlq_error"]
        assert by_id[b"x"]["dlq_source_topic"] == topic.encode()
        assert by_id[b"x"]["dlq_source_offset"].isdigit()

        # A redelivery after a restart (same group, committed offsets) changes nothing.
        await publisher.publish_many([(topic, event("e2")), (topic, event("e5"))])
        loop = new_loop()
        task = asyncio.create_task(loop.run())

        async def e5_applied() -> bool:
            return "e5" in await effect_ids(engine)

        await wait_for(e5_applied)
        loop.stop()
        await task
        assert await effect_ids(engine) == ["e1", "e2", "e3", "e4", "e5"]
        async with engine.connect() as connection:
            inbox_rows = await connection.scalar(select(func.count()).select_from(tables.inbox))
        assert inbox_rows == 5
    finally:
        await publisher.stop()
        await engine.dispose()
