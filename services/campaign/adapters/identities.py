"""Moving what campaign holds under a customer id that profile joined to another customer."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Table, delete, exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import (
    actions,
    assignments,
    coupons,
    customer_facts,
    loyalty_accounts,
    purchases,
    scheduled_triggers,
)


async def move_customer(session: AsyncSession, from_id: str, to_id: str) -> int:
    """Everything held under `from_id` now belongs to `to_id` (both locked by `aliases.join`).

    Rows that would collide keep `to_id`'s own: the same order recorded under both ids counts once, and the
    A/B arm or scheduled trigger `to_id` already has stays. Facts and loyalty are left to the caller, which
    combines the facts and recomputes points from the moved purchases; returns how many `from_id` had.
    """
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


async def erase_customer(session: AsyncSession, customer_id: str) -> None:
    """Right to erasure: every row campaign holds under the id goes."""
    for table in (scheduled_triggers, coupons, actions, assignments, purchases, loyalty_accounts, customer_facts):
        await session.execute(delete(table).where(table.c.customer_id == customer_id))
