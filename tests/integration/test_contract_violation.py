"""A derived event whose data does not match its contract is dead-lettered at once, with the validation error."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import Column, MetaData, Table, Text, select

from libs.common.consumer import ConsumerLoop, HandlerContext, Subscription, one_by_one
from libs.common.contracts import SlaBreached, derived, parse
from libs.common.db import MessagingTables, create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher, ensure_topics
from libs.common.outbox import Outbox
from libs.common.topics import CUSTOMER_EVENTS
from tests.conftest import Isolation
from tests.integration.test_consumer_loop import read_dlq, wait_for

metadata = MetaData(schema="contracttest")
tables = MessagingTables(metadata)
breaches = Table("breaches", metadata, Column("ticket_id", Text, primary_key=True), Column("clock", Text))
AT = datetime(2026, 5, 1, tzinfo=UTC)


async def record_breach(ctx: HandlerContext, event: CloudEvent) -> None:
    breach = parse(event, SlaBreached)
    await ctx.session.execute(breaches.insert().values(ticket_id=breach.ticket_id, clock=breach.clock))


async def test_a_breach_missing_its_figures_is_dead_lettered_once_naming_them(isolated: Isolation) -> None:
    settings = isolated.settings("contracttest", consumer_batch_size=50)
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS contracttest")
        await connection.run_sync(metadata.create_all)
    await ensure_topics(settings)
    publisher = Publisher(settings)
    await publisher.start()
    topic = isolated.prefix + CUSTOMER_EVENTS
    good = SlaBreached(ticket_id="t-1", clock="resolution", tier="high", priority="high", target_s=60, elapsed_s=90)
    _, valid = derived(good, cause="c-1", source="test", subject="c-1", time=AT)
    invalid = CloudEvent("bad", "test", "sla.breached", "c-1", AT, {"ticket_id": "t-2", "clock": "resolution"})
    subscription = Subscription("breaches", (CUSTOMER_EVENTS,), one_by_one(record_breach))
    loop = ConsumerLoop(subscription, settings, session_factory(engine), tables, publisher, Outbox(tables, ""))
    try:
        await publisher.publish_many([(topic, invalid), (topic, valid)])
        task = asyncio.create_task(loop.run())

        async def recorded() -> bool:
            async with engine.connect() as connection:
                return list(await connection.execute(select(breaches.c.ticket_id))) == [("t-1",)]

        await wait_for(recorded)
        dead = await read_dlq(isolated, 1)
        loop.stop()
        await task
        assert [headers["ce_id"] for headers in dead] == [b"bad"]
        error = dead[0]["dlq_error"].decode()
        assert error.startswith("ContractViolation: sla.breached bad does not match SlaBreached")
        assert "data.tier" in error and "data.target_s" in error and "data.elapsed_s" in error
        assert dead[0]["dlq_attempts"] == b"1"  # never retried: it can never succeed
    finally:
        await publisher.stop()
        await engine.dispose()
