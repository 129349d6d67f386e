"""Customer ids that profile merged or aliased: resolving them, and moving what campaign holds under them."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import (
    actions,
    assignments,
    coupons,
    customer_aliases,
    customer_facts,
    loyalty_accounts,
    purchases,
    scheduled_triggers,
)

# The two-key form of advisory locks is a keyspace of its own, apart from the one-key locks of refits and migrations.
_CUSTOMER_LOCK_CLASS = 0x43414D50  # "CAMP"


async def resolve(session: AsyncSession, customer_id: str) -> str:
    """The customer an id stands for now: itself, unless profile merged it into (or recognised it as) another."""
    target = await session.scalar(
        select(customer_aliases.c.customer_id).where(customer_aliases.c.alias_id == customer_id)
    )
    return target or customer_id


async def lock_and_resolve(session: AsyncSession, customer_id: str) -> str:
    """`resolve`, holding the id's lock until the transaction ends: for handlers that write under the result.

    Customer events and profile's joins arrive on different topics and run side by side: without the lock, a
    purchase resolved just before its id was joined would be written under the old id after the join had moved
    everything else.
    """
    await _lock(session, customer_id)
    return await resolve(session, customer_id)


async def move_customer(session: AsyncSession, from_id: str, to_id: str) -> int:
    """Everything held under `from_id` now belongs to `to_id`, and so will its later events.

    Rows that would collide keep `to_id`'s own: the same order recorded under both ids counts once, and the
    A/B arm or scheduled trigger `to_id` already has stays. Facts and loyalty are left to the caller, which
    combines the facts and recomputes points from the moved purchases; returns how many `from_id` had.
    """
    await _lock(session, from_id)
    await session.execute(
        pg_insert(customer_aliases)
        .values(alias_id=from_id, customer_id=to_id)
        .on_conflict_do_update(index_elements=[customer_aliases.c.alias_id], set_={"customer_id": to_id})
    )
    # Ids that pointed at `from_id` follow it, so that resolving never needs more than one step.
    await session.execute(
        update(customer_aliases).where(customer_aliases.c.customer_id == from_id).values(customer_id=to_id)
    )
    for table in (purchases, assignments):
        await _copy_unless_taken(session, table, from_id, to_id)
    for table in (actions, coupons):
        await session.execute(update(table).where(table.c.customer_id == from_id).values(customer_id=to_id))
    twin = scheduled_triggers.alias("twin")
    await session.execute(
        update(scheduled_triggers)
        .where(
            scheduled_triggers.c.customer_id == from_id,
            ~exists().where(
                twin.c.customer_id == to_id,
                twin.c.campaign_id == scheduled_triggers.c.campaign_id,
                twin.c.window == scheduled_triggers.c.window,
            ),
        )
        .values(customer_id=to_id)
    )
    for table in (assignments, scheduled_triggers, loyalty_accounts, customer_facts):
        await session.execute(delete(table).where(table.c.customer_id == from_id))
    moved = cast(CursorResult[Any], await session.execute(delete(purchases).where(purchases.c.customer_id == from_id)))
    return moved.rowcount


async def forget_aliases(session: AsyncSession, customer_id: str) -> None:
    """Erasure: the customer's ids no longer lead anywhere."""
    await session.execute(
        delete(customer_aliases).where(
            (customer_aliases.c.customer_id == customer_id) | (customer_aliases.c.alias_id == customer_id)
        )
    )


async def _lock(session: AsyncSession, customer_id: str) -> None:
    await session.execute(select(func.pg_advisory_xact_lock(_CUSTOMER_LOCK_CLASS, func.hashtext(customer_id))))


async def _copy_unless_taken(session: AsyncSession, table: Table, from_id: str, to_id: str) -> None:
    others = [column for column in table.c if column.name != "customer_id"]
    await session.execute(
        pg_insert(table)
        .from_select(
            ["customer_id", *(column.name for column in others)],
            select(literal(to_id), *others).where(table.c.customer_id == from_id),
        )
        .on_conflict_do_nothing()
    )
