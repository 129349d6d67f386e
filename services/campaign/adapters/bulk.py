"""Set-at-a-time queries for a consumer batch: one round trip for many customers instead of one per event.

Rows are written sorted by key, so two writers that meet on the same rows take their locks in the same order.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Text, any_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import unnest
from services.campaign.adapters.tables import (
    campaigns,
    customer_facts,
    erasures,
    loyalty_accounts,
    purchases,
    scheduled_triggers,
)


def among(column: Any, values: Collection[str]) -> ColumnElement[bool]:
    """`column = ANY(array)`: one statement shape (prepared once) for any number of values, unlike IN (...)."""
    return column == any_(bindparam(None, sorted(values), type_=ARRAY(Text)))  # type: ignore[no-any-return]


FACT_COLUMNS = tuple(c.name for c in customer_facts.c if c.name not in ("customer_id", "updated_at"))

_FACT_ROW = ("customer_id", *FACT_COLUMNS)
# unnest arrays, not executemany: one statement for the batch rather than one execution per row in PostgreSQL
_upsert_facts = unnest.insert_statement(
    customer_facts, _FACT_ROW, unnest.upsert_all(customer_facts, ("customer_id",), _FACT_ROW, touch="updated_at")
)
_PURCHASE_ROW = tuple(c.name for c in purchases.c)
_insert_purchases = unnest.insert_statement(purchases, _PURCHASE_ROW, "ON CONFLICT DO NOTHING")

_LOYALTY_ROW = ("customer_id", "points", "level", "rolling_spend")
_upsert_loyalty = unnest.insert_statement(
    loyalty_accounts,
    _LOYALTY_ROW,
    unnest.upsert_all(loyalty_accounts, ("customer_id",), _LOYALTY_ROW, touch="updated_at"),
)

_refund = (
    update(purchases)
    .where(purchases.c.customer_id == bindparam("b_customer"), purchases.c.order_id == bindparam("b_order"))
    .values(refunded=True)
)

_cancel_schedule = (
    update(scheduled_triggers)
    .where(
        scheduled_triggers.c.campaign_id == bindparam("b_campaign"),
        scheduled_triggers.c.customer_id == bindparam("b_customer"),
        scheduled_triggers.c.status == "pending",
        scheduled_triggers.c.window != func.all(bindparam("b_keep", type_=ARRAY(Text))),
    )
    .values(status="cancelled")
)

_schedule = pg_insert(scheduled_triggers)
_schedule = _schedule.on_conflict_do_update(
    constraint="scheduled_triggers_once",
    set_={"status": "pending", "fire_at": _schedule.excluded.fire_at},
    # Fired already stays fired; cancelled and re-announced comes back to life.
    where=scheduled_triggers.c.status == "cancelled",
)


async def campaign_fingerprints(session: AsyncSession, *, include_builtin: bool) -> dict[str, str]:
    """Active campaigns by id with a digest of their stored definition: what a cache compares to stay true."""
    query = select(campaigns.c.id, func.md5(campaigns.c.definition.cast(Text()))).where(campaigns.c.status == "active")
    if not include_builtin:
        query = query.where(campaigns.c.builtin.is_(False))
    return {row[0]: row[1] for row in (await session.execute(query)).all()}


async def load_campaign_rows(session: AsyncSession, ids: Collection[str]) -> list[Any]:
    query = select(campaigns, func.md5(campaigns.c.definition.cast(Text())).label("digest")).where(
        among(campaigns.c.id, ids)
    )
    return list((await session.execute(query)).all())


async def customer_ids(session: AsyncSession) -> list[str]:
    """Every customer campaign holds facts of, sorted."""
    rows = await session.execute(select(customer_facts.c.customer_id).order_by(customer_facts.c.customer_id))
    return list(rows.scalars())


async def load_facts(session: AsyncSession, customer_ids: Collection[str]) -> dict[str, dict[str, Any]]:
    if not customer_ids:
        return {}
    rows = await session.execute(select(customer_facts).where(among(customer_facts.c.customer_id, customer_ids)))
    return {row.customer_id: dict(row._mapping) for row in rows}


async def upsert_facts(session: AsyncSession, rows: Iterable[Mapping[str, Any]]) -> None:
    """Whole rows (every fact column): the caller holds each customer's lock and read the row first."""
    values = [{"customer_id": row["customer_id"], **{name: row.get(name) for name in FACT_COLUMNS}} for row in rows]
    if values:
        values.sort(key=lambda row: row["customer_id"])
        await session.execute(_upsert_facts, unnest.parameters(customer_facts, _FACT_ROW, values))


async def erasures_of(session: AsyncSession, customer_ids: Collection[str]) -> dict[str, datetime]:
    """When each of the ids was erased, for those that were (one round trip for the whole batch)."""
    if not customer_ids:
        return {}
    table = erasures.table
    query = select(table.c.customer_id, table.c.erased_at).where(among(table.c.customer_id, customer_ids))
    return {customer_id: at for customer_id, at in (await session.execute(query)).all()}


PurchaseRow = tuple[str, datetime, Decimal, bool]  # order id, time, amount, refunded


async def load_purchases(session: AsyncSession, customer_ids: Collection[str]) -> dict[str, list[PurchaseRow]]:
    history: dict[str, list[PurchaseRow]] = {customer_id: [] for customer_id in customer_ids}
    if not customer_ids:
        return history
    query = select(
        purchases.c.customer_id,
        purchases.c.order_id,
        purchases.c.purchased_at,
        purchases.c.amount,
        purchases.c.refunded,
    ).where(among(purchases.c.customer_id, customer_ids))
    for customer_id, order_id, at, amount, refunded in (await session.execute(query)).all():
        history[customer_id].append((order_id, at, Decimal(amount), refunded))
    return history


async def load_levels(session: AsyncSession, customer_ids: Collection[str]) -> dict[str, str]:
    if not customer_ids:
        return {}
    query = (
        select(loyalty_accounts.c.customer_id, loyalty_accounts.c.level)
        .where(among(loyalty_accounts.c.customer_id, customer_ids))
        .order_by(loyalty_accounts.c.customer_id)
        .with_for_update()
    )
    return {customer_id: level for customer_id, level in (await session.execute(query)).all()}


async def insert_purchases(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        ordered = sorted(rows, key=lambda row: (row["customer_id"], row["order_id"]))
        await session.execute(_insert_purchases, unnest.parameters(purchases, _PURCHASE_ROW, ordered))


async def mark_refunded(session: AsyncSession, keys: Collection[tuple[str, str]]) -> None:
    if keys:
        await session.execute(_refund, [{"b_customer": c, "b_order": o} for c, o in sorted(keys)])


async def upsert_loyalty(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        ordered = sorted(rows, key=lambda row: row["customer_id"])
        await session.execute(_upsert_loyalty, unnest.parameters(loyalty_accounts, _LOYALTY_ROW, ordered))


async def reschedule(
    session: AsyncSession,
    keep: Mapping[tuple[str, str], Sequence[str]],
    due: Sequence[Mapping[str, Any]],
) -> None:
    """`keep`: (campaign, customer) → windows still due (other pending rows are cancelled); `due`: rows to have."""
    if keep:
        await session.execute(
            _cancel_schedule,
            [
                {"b_campaign": campaign, "b_customer": customer, "b_keep": list(windows)}
                for (campaign, customer), windows in sorted(keep.items())
            ],
        )
    if due:
        ordered = sorted(due, key=lambda row: (row["campaign_id"], row["customer_id"], row["window"]))
        await session.execute(_schedule, ordered)
