"""Customer ids that profile joined to a customer, for services that receive events under upstream ids.

Upstream systems post under their own customer ids. Profile works out which of them are one person and says so on
`profile-changes`: `profile.merged` (two profiles became one) and `profile.aliased` (an id without a profile of its
own is an existing customer). A service that keeps data by customer id records these joins in its own
`customer_aliases` table, resolves the subjects of later events through it, and moves what it held under the
joined id (that part is the service's own).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import (
    ARRAY,
    Column,
    Index,
    MetaData,
    Table,
    Text,
    any_,
    bindparam,
    column,
    delete,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.contracts import ProfileAliased, ProfileMerged, parse
from libs.common.envelope import CloudEvent

JOIN_EVENT_TYPES = frozenset({"profile.merged", "profile.aliased"})
# The two-key form of advisory locks is a keyspace of its own, apart from the one-key locks of refits and migrations.
_CUSTOMER_LOCK_CLASS = 0x414C4941  # "ALIA"


def joined_ids(event: CloudEvent) -> tuple[str, str] | None:
    """(joined id, customer id) of a `profile.merged` / `profile.aliased` event, read through its contract (one that
    does not match raises ContractViolation, so it is dead-lettered); None for other types and for an id joined to
    itself."""
    if event.type == "profile.merged":
        merged = parse(event, ProfileMerged)
        from_id, into_id = merged.merged_id, merged.survivor_id
    elif event.type == "profile.aliased":
        aliased = parse(event, ProfileAliased)
        from_id, into_id = aliased.alias_id, aliased.customer_id
    else:
        return None
    return (from_id, into_id) if from_id != into_id else None


class CustomerAliases:
    """The `customer_aliases` table in a service's schema (created by `migrations.create_customer_aliases`)."""

    _key = func.hashtext(column("ids"))
    _keys = (
        select(_key.label("key")).select_from(func.unnest(bindparam("ids", type_=ARRAY(Text))).alias("ids")).distinct()
    )
    _lock_many = select(
        func.count(func.pg_advisory_xact_lock(_CUSTOMER_LOCK_CLASS, literal_column("key")))
    ).select_from(_keys.order_by("key").subquery())

    def __init__(self, metadata: MetaData) -> None:
        self.table = Table(
            "customer_aliases",
            metadata,
            Column("alias_id", Text, primary_key=True),
            Column("customer_id", Text, nullable=False),
            Index("customer_aliases_customer", "customer_id"),
        )

    async def resolve(self, session: AsyncSession, customer_id: str) -> str:
        """The customer an id stands for now: itself, unless profile joined it to another."""
        target = await session.scalar(select(self.table.c.customer_id).where(self.table.c.alias_id == customer_id))
        return target or customer_id

    async def lock_and_resolve(self, session: AsyncSession, customer_id: str) -> str:
        """`resolve`, holding the id's lock until the transaction ends: for handlers that write under the result.

        Customer events and profile's joins arrive on different topics and run side by side: without the lock, an
        event resolved just before its id was joined would be written under the old id after the join had moved
        everything else.
        """
        await self._lock(session, customer_id)
        return await self.resolve(session, customer_id)

    async def resolve_many(self, session: AsyncSession, customer_ids: Collection[str]) -> dict[str, str]:
        """`resolve` of each id in one round trip."""
        found = await session.execute(
            select(self.table.c.alias_id, self.table.c.customer_id).where(
                self.table.c.alias_id == any_(bindparam(None, sorted(customer_ids), type_=ARRAY(Text)))
            )
        )
        targets: dict[str, str] = {alias: customer for alias, customer in found.all()}
        return {customer_id: targets.get(customer_id, customer_id) for customer_id in customer_ids}

    async def lock_many(self, session: AsyncSession, customer_ids: Collection[str]) -> None:
        """The ids' locks (those `lock_and_resolve` takes) in one statement, in ascending lock-key order.

        A batch that takes many customers' locks one by one in its own order deadlocks with a batch taking an
        overlapping set in another order; one global order (the lock key itself, so ids sharing a key are one
        lock) cannot form a cycle.
        """
        if customer_ids:
            await session.execute(self._lock_many, {"ids": sorted(set(customer_ids))})

    async def join(self, session: AsyncSession, from_id: str, into_id: str) -> str:
        """Records that `from_id` is `into_id` (resolved further if that was joined too); returns the customer.

        Holds both ids' locks until the transaction ends, for the caller to move its rows under.
        """
        await self.lock_many(session, (from_id, into_id))
        into_id = await self.lock_and_resolve(session, into_id)
        if from_id == into_id:
            return into_id
        await session.execute(
            pg_insert(self.table)
            .values(alias_id=from_id, customer_id=into_id)
            .on_conflict_do_update(index_elements=[self.table.c.alias_id], set_={"customer_id": into_id})
        )
        # Ids that pointed at `from_id` follow it, so that resolving never needs more than one step.
        await session.execute(update(self.table).where(self.table.c.customer_id == from_id).values(customer_id=into_id))
        return into_id

    async def ids_joined_to(self, session: AsyncSession, customer_id: str) -> list[str]:
        """The ids profile joined to the customer, sorted."""
        rows = await session.execute(
            select(self.table.c.alias_id).where(self.table.c.customer_id == customer_id).order_by(self.table.c.alias_id)
        )
        return list(rows.scalars())

    async def forget(self, session: AsyncSession, customer_id: str) -> None:
        """Erasure: the customer's ids no longer lead anywhere."""
        table = self.table
        await session.execute(
            delete(table).where((table.c.customer_id == customer_id) | (table.c.alias_id == customer_id))
        )

    @staticmethod
    async def _lock(session: AsyncSession, customer_id: str) -> None:
        await session.execute(select(func.pg_advisory_xact_lock(_CUSTOMER_LOCK_CLASS, func.hashtext(customer_id))))
