"""Customers erased on request, remembered by every service that keeps data by customer id.

Profile erases a person and announces `customer.erased` for every id they were known under; the event's time is
the erasure instant. A service deletes what it holds and records each id with that instant in its own
`customer_erasures` table. From then on an event about the id whose time is not after the instant describes the
erased person (a late delivery, a redelivery, a replay, a backfill, an event of another topic that overtook the
erasure) and must not recreate anything; a newer event is the customer coming back and starts afresh, as profile
does.

Erasure and the writes it races with are serialised by the customer's lock (the advisory lock of
`libs.common.aliases`): a handler takes the lock of the event's id before it reads the erasure record, and the
erasure takes the locks of the id and of every id joined to it before it records and deletes. So a handler either
commits before the erasure deletes (and its rows are deleted) or reads the record after the erasure committed (and
writes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.aliases import CustomerAliases, joined_ids
from libs.common.contracts import CustomerErased, parse
from libs.common.envelope import CloudEvent

log = logging.getLogger(__name__)

ERASED_EVENT_TYPE = "customer.erased"


def erased_id(event: CloudEvent) -> str:
    """The id a `customer.erased` event erases; ContractViolation (dead-lettered) when it names none."""
    return parse(event, CustomerErased).customer_id


class ErasureRecords:
    """The `customer_erasures` table in a service's schema (created by `migrations.create_customer_erasures`)."""

    def __init__(self, metadata: MetaData) -> None:
        self.table = Table(
            "customer_erasures",
            metadata,
            Column("customer_id", Text, primary_key=True),
            Column("erased_at", DateTime(timezone=True), nullable=False),
        )

    async def record(self, session: AsyncSession, customer_ids: Iterable[str], at: datetime) -> None:
        """Remembers the ids as erased at `at`; a later erasure of the same id moves the instant forward only."""
        rows = [{"customer_id": customer_id, "erased_at": at} for customer_id in sorted(set(customer_ids))]
        if not rows:
            return
        stmt = pg_insert(self.table).values(rows)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[self.table.c.customer_id],
                set_={"erased_at": func.greatest(self.table.c.erased_at, stmt.excluded.erased_at)},
            )
        )

    async def erased_at(self, session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, datetime]:
        ids = sorted(set(customer_ids))
        if not ids:
            return {}
        rows = await session.execute(
            select(self.table.c.customer_id, self.table.c.erased_at).where(self.table.c.customer_id.in_(ids))
        )
        return {row.customer_id: row.erased_at for row in rows}

    async def describes_erased(self, session: AsyncSession, customer_ids: Iterable[str], at: datetime) -> bool:
        """True when any of the ids was erased at or after `at`: an event of that time is the erased person's."""
        return any(erased >= at for erased in (await self.erased_at(session, customer_ids)).values())


class ErasureGuard:
    """What a consumer of a service with customer aliases does about erasure, around its own handlers."""

    def __init__(self, aliases: CustomerAliases, erasures: ErasureRecords) -> None:
        self.aliases = aliases
        self.erasures = erasures

    async def admits(self, session: AsyncSession, event: CloudEvent) -> bool:
        """Locks the event's ids (held until the transaction ends) and says whether the event may change state.

        `customer.erased` itself is always admitted. A join (`profile.merged` / `profile.aliased`) locks the
        customer first and then the joined id, the order `CustomerAliases.join` and `lock_erased` use.
        """
        if event.type == ERASED_EVENT_TYPE:
            return True
        joined = joined_ids(event)
        ids = list(joined[::-1]) if joined is not None else [event.subject]
        resolved = [await self.aliases.lock_and_resolve(session, customer_id) for customer_id in ids]
        if await self.erasures.describes_erased(session, {*ids, *resolved}, event.time):
            log.info("event about an erased customer dropped", extra={"event_type": event.type})
            return False
        return True

    async def admitted(self, session: AsyncSession, events: Sequence[CloudEvent]) -> list[CloudEvent]:
        """`admits` for a batch in three round trips: the events that may change state, in their order.

        Only for events that neither join nor erase ids: nothing in the batch changes what the others resolve to
        or whether their customer is erased, so one read serves them all. The subjects' locks are taken together,
        in lock-key order, so two batches meeting on the same customers cannot deadlock.
        """
        if any(event.type == ERASED_EVENT_TYPE or joined_ids(event) is not None for event in events):
            raise ValueError("joins and erasures change what later events resolve to: admit them one by one")
        subjects = {event.subject for event in events}
        if not subjects:
            return []
        await self.aliases.lock_many(session, subjects)
        resolved = await self.aliases.resolve_many(session, subjects)
        erased = await self.erasures.erased_at(session, {*subjects, *resolved.values()})
        admitted = [
            event
            for event in events
            if not any(
                (at := erased.get(customer_id)) is not None and at >= event.time
                for customer_id in (event.subject, resolved[event.subject])
            )
        ]
        if len(admitted) < len(events):
            log.info("events about erased customers dropped", extra={"dropped": len(events) - len(admitted)})
        return admitted

    async def lock_erased(self, session: AsyncSession, event: CloudEvent) -> list[str]:
        """For a `customer.erased`: locks the id, then every id joined to it, records them all as erased at the
        event's time and returns them (the erased id first). The caller deletes its rows under these ids and then
        calls `CustomerAliases.forget`."""
        customer_id = erased_id(event)
        await self.aliases.lock_and_resolve(session, customer_id)
        joined = await self.aliases.ids_joined_to(session, customer_id)
        for alias_id in joined:
            await self.aliases.lock_and_resolve(session, alias_id)
        ids = [customer_id, *joined]
        await self.erasures.record(session, ids, event.time)
        return ids
