"""`retain dlq`: a message dead-lettered by a failing consumer is listed, shown, replayed after the fix and handled
once — by the group that failed, and not again by the group that had handled it, however often it is replayed."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from libs.common.consumer import ConsumerLoop, HandlerContext, Subscription, one_by_one
from libs.common.db import MessagingTables, create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher, ensure_topics
from libs.common.outbox import Outbox
from libs.common.topics import CUSTOMER_EVENTS, dlq_of
from retain_cli.dlq import read_dead_letters
from tests.conftest import REPO_ROOT, Isolation

SERVICE = "dlqtest"
metadata = MetaData(schema=SERVICE)
tables = MessagingTables(metadata)
# No ON CONFLICT on the key: a second effect of one event in one group would fail loudly.
effects = Table(
    "effects", metadata, Column("consumer", Text, primary_key=True), Column("event_id", Text, primary_key=True)
)


@dataclass
class Bug:
    """A defect in one consumer's handler, fixed while its victims wait in the dead-letter topic."""

    present: bool = True


def recording(consumer: str, bug: Bug | None) -> Callable[[HandlerContext, CloudEvent], Awaitable[None]]:
    async def handle(ctx: HandlerContext, event: CloudEvent) -> None:
        if bug is not None and bug.present and event.type == "ticket.opened":
            raise RuntimeError(f"{consumer} cannot handle {event.id} yet")
        await ctx.session.execute(effects.insert().values(consumer=consumer, event_id=event.id))

    return handle


async def effect_rows(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(effects.c.consumer, effects.c.event_id).order_by(*effects.c))
        return [(row.consumer, row.event_id) for row in rows]


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def retain(*argv: str) -> tuple[int, str]:
    """The real command line, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "retain_cli", *argv, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def consumed(topic: str, outcome: str, consumer_service: str = SERVICE) -> float:
    value = REGISTRY.get_sample_value(
        "retain_events_consumed_total",
        {"service": consumer_service, "topic": topic, "type": "ticket.opened", "outcome": outcome},
    )
    return value or 0.0


@dataclass
class Rig:
    isolated: Isolation
    engine: AsyncEngine
    publisher: Publisher
    bug: Bug
    topic: str

    def cli(self) -> list[str]:
        return ["--bootstrap", self.isolated.stack.broker.bootstrap, "--prefix", self.isolated.prefix]


@pytest.fixture
async def rig(isolated: Isolation) -> AsyncIterator[Rig]:
    settings = isolated.settings(SERVICE)
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SERVICE}")
        await connection.run_sync(metadata.create_all)
    await ensure_topics(settings)
    publisher = Publisher(settings)
    await publisher.start()
    bug = Bug()
    sessions = session_factory(engine)
    loops = [
        ConsumerLoop(
            Subscription(name, (CUSTOMER_EVENTS,), one_by_one(recording(name, bug if name == "fragile" else None))),
            settings,
            sessions,
            tables,
            publisher,
            Outbox(tables, isolated.prefix),
        )
        for name in ("healthy", "fragile")
    ]
    tasks = [asyncio.create_task(loop.run()) for loop in loops]
    try:
        yield Rig(isolated, engine, publisher, bug, isolated.prefix + CUSTOMER_EVENTS)
    finally:
        for loop in loops:
            loop.stop()
        await asyncio.gather(*tasks)
        await publisher.stop()
        await engine.dispose()


def ticket(event_id: str) -> CloudEvent:
    return CloudEvent(
        id=event_id, source="test", type="ticket.opened", subject="c-7", time=datetime.now(UTC), data={"n": 1}
    )


async def test_a_replayed_dead_letter_is_handled_once_by_the_group_that_failed(rig: Rig) -> None:
    duplicates_before = consumed(rig.topic, "duplicate")
    await rig.publisher.publish(rig.topic, ticket("t-dead"))
    dlq_topic = rig.isolated.prefix + dlq_of(CUSTOMER_EVENTS)

    async def dead_lettered() -> bool:
        return len(await read_dead_letters(rig.isolated.stack.broker.bootstrap, [dlq_topic])) == 1

    await eventually(dead_lettered)
    assert await effect_rows(rig.engine) == [("healthy", "t-dead")]

    code, listing = await retain("dlq", "list", "--json", *rig.cli())
    assert code == 0
    [letter] = [json.loads(line) for line in listing.splitlines()]
    assert letter["id"] == "t-dead"
    assert letter["consumer"] == "dlqtest.fragile"
    assert "RuntimeError: fragile cannot handle t-dead yet" in letter["error"]
    code, shown = await retain("dlq", "show", letter["ref"], *rig.cli())
    assert code == 0
    assert json.loads(shown)["body"] == {"n": 1}

    rig.bug.present = False
    code, out = await retain("dlq", "replay", "--id", "t-dead", *rig.cli())
    assert code == 0, out
    assert "1 message(s) re-published" in out

    async def handled_by_both() -> bool:
        return await effect_rows(rig.engine) == [("fragile", "t-dead"), ("healthy", "t-dead")]

    await eventually(handled_by_both)

    # Replaying again (an operator's second try) reaches both groups and changes nothing.
    code, out = await retain("dlq", "replay", "--consumer", "dlqtest.fragile", *rig.cli())
    assert code == 0, out

    async def both_saw_a_duplicate() -> bool:
        # The healthy group saw the first replay as a duplicate, then both groups the second.
        return consumed(rig.topic, "duplicate") - duplicates_before >= 3

    await eventually(both_saw_a_duplicate)
    assert await effect_rows(rig.engine) == [("fragile", "t-dead"), ("healthy", "t-dead")]
    assert len(await read_dead_letters(rig.isolated.stack.broker.bootstrap, [dlq_topic])) == 1


async def test_replay_names_what_to_replay(rig: Rig) -> None:
    code, _ = await retain("dlq", "replay", *rig.cli())
    assert code == 2
    code, _ = await retain("dlq", "replay", "--id", "no-such-event", *rig.cli())
    assert code == 1
