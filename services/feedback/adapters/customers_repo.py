"""The customer facts feedback keeps (tier from scoring, segments from profile) and erasure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import (
    aliases,
    contacts,
    customers,
    sla_breaches,
    survey_responses,
    survey_tokens,
    tickets,
)
from services.feedback.domain.customers import CustomerRecord, joined

# Rows that belong to a customer, as opposed to the customer's own facts (`customers`).
_HELD_BY_CUSTOMER = (tickets, sla_breaches, survey_responses, survey_tokens, contacts)


@dataclass(frozen=True)
class CustomerFacts:
    tier: str | None = None
    segments: list[str] = field(default_factory=list)


async def facts(session: AsyncSession, customer_id: str) -> CustomerFacts:
    row = (
        await session.execute(
            select(customers.c.tier, customers.c.segments).where(customers.c.customer_id == customer_id)
        )
    ).first()
    return CustomerFacts() if row is None else CustomerFacts(row.tier, list(row.segments))


async def set_tier(session: AsyncSession, customer_id: str, tier: str, at: datetime) -> None:
    """Newest event time wins: a late, older score must not overwrite a newer tier."""
    stmt = pg_insert(customers).values(customer_id=customer_id, tier=tier, tier_at=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[customers.c.customer_id],
            set_={"tier": stmt.excluded.tier, "tier_at": stmt.excluded.tier_at},
            where=(customers.c.tier_at.is_(None)) | (customers.c.tier_at <= stmt.excluded.tier_at),
        )
    )


async def change_segments(
    session: AsyncSession, customer_id: str, entered: Iterable[str], left: Iterable[str], at: datetime
) -> None:
    row = (
        await session.execute(
            select(customers.c.segments).where(customers.c.customer_id == customer_id).with_for_update()
        )
    ).first()
    current = set(row.segments) if row is not None else set()
    updated = sorted((current | set(entered)) - set(left))
    stmt = pg_insert(customers).values(customer_id=customer_id, segments=updated, segments_at=at)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[customers.c.customer_id],
            set_={"segments": stmt.excluded.segments, "segments_at": stmt.excluded.segments_at},
        )
    )


async def erase(session: AsyncSession, customer_ids: Sequence[str]) -> dict[str, int]:
    """Deletes everything feedback holds under the ids (locked and recorded as erased by the caller)."""
    deleted: dict[str, int] = {}
    for table in (*_HELD_BY_CUSTOMER, customers):
        result = await session.execute(delete(table).where(table.c.customer_id.in_(customer_ids)))
        deleted[table.name] = int(getattr(result, "rowcount", 0) or 0)
    for customer_id in customer_ids:
        await aliases.forget(session, customer_id)
    return deleted


async def move_customer(session: AsyncSession, from_id: str, to_id: str) -> None:
    """Everything held under `from_id` now belongs to `to_id` (both locked by `aliases.join`)."""
    for table in _HELD_BY_CUSTOMER:
        await session.execute(update(table).where(table.c.customer_id == from_id).values(customer_id=to_id))
    records = {
        row.customer_id: CustomerRecord(row.tier, row.tier_at, tuple(row.segments), row.segments_at)
        for row in await session.execute(
            select(customers).where(customers.c.customer_id.in_((from_id, to_id))).with_for_update()
        )
    }
    if from_id not in records:
        return
    combined = joined(records.get(to_id, CustomerRecord()), records[from_id])
    values = {
        "tier": combined.tier,
        "tier_at": combined.tier_at,
        "segments": list(combined.segments),
        "segments_at": combined.segments_at,
    }
    await session.execute(
        pg_insert(customers)
        .values(customer_id=to_id, **values)
        .on_conflict_do_update(index_elements=[customers.c.customer_id], set_=values)
    )
    await session.execute(delete(customers).where(customers.c.customer_id == from_id))
