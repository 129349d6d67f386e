"""Accepting events: durable in the event log first, then published with acks=all.

An event is answered "accepted" once it is committed in the event log. If the broker acknowledges at
once it is marked published; otherwise it stays unpublished and the relay publishes it later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aiokafka.errors import KafkaError
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher
from libs.common.topics import CUSTOMER_EVENTS
from services.ingest.adapters.tables import event_log

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Acceptance:
    event_id: str
    status: Literal["accepted", "duplicate"]
    published: bool


async def accept_events(
    events: Sequence[CloudEvent], sessions: async_sessionmaker[AsyncSession], publisher: Publisher
) -> list[Acceptance]:
    if not events:
        return []
    async with sessions() as session, session.begin():
        result = await session.execute(
            pg_insert(event_log)
            .values(
                [
                    {
                        "event_id": e.id,
                        "type": e.type,
                        "customer_id": e.subject,
                        "source": e.source,
                        "event_time": e.time,
                        "data": e.data,
                    }
                    for e in events
                ]
            )
            .on_conflict_do_nothing()
            .returning(event_log.c.event_id)
        )
        fresh_ids = set(result.scalars())
    fresh: list[CloudEvent] = []
    outcomes: list[Acceptance] = []
    for event in events:
        if event.id in fresh_ids:
            fresh_ids.discard(event.id)
            fresh.append(event)
    published = await publish_and_mark(fresh, sessions, publisher)
    fresh_set = {id(e) for e in fresh}
    for event in events:
        if id(event) in fresh_set:
            outcomes.append(Acceptance(event.id, "accepted", published))
        else:
            outcomes.append(Acceptance(event.id, "duplicate", False))
    return outcomes


async def publish_and_mark(
    events: Sequence[CloudEvent], sessions: async_sessionmaker[AsyncSession], publisher: Publisher
) -> bool:
    """True when the broker acknowledged every event; False leaves them for the relay."""
    if not events:
        return True
    if not publisher.started:
        return False
    topic = publisher.topic(CUSTOMER_EVENTS)
    try:
        await publisher.publish_many([(topic, e) for e in events])
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("broker did not acknowledge; events stay in the outbox", extra={"error": repr(exc)})
        return False
    async with sessions() as session, session.begin():
        await session.execute(
            update(event_log).where(event_log.c.event_id.in_([e.id for e in events])).values(published=True)
        )
    return True
