"""The customer facts feedback keeps (tier from scoring, segments from profile) and erasure."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ARRAY, Text, any_, bindparam, delete, select, update
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


_upsert_tier = pg_insert(customers)
_upsert_tier = _upsert_tier.on_conflict_do_update(
    index_elements=[customers.c.customer_id],
    set_={"tier": _upsert_tier.excluded.tier, "tier_at": _upsert_tier.excluded.tier_at},
    # Newest event time wins: a late, older score must not overwrite a newer tier.
    where=(customers.c.tier_at.is_(None)) | (customers.c.tier_at <= _upsert_tier.excluded.tier_at),
)
_upsert_segments = pg_insert(customers)
_upsert_segments = _upsert_segments.on_conflict_do_update(
    index_elements=[customers.c.customer_id],
    set_={"segments": _upsert_segments.excluded.segments, "segments_at": _upsert_segments.excluded.segments_at},
)


async def set_tiers(session: AsyncSession, tiers: Mapping[str, tuple[str, datetime]]) -> None:
    """customer → (tier, event time), in one statement; rows in key order, so writers lock them in one order."""
    rows = [
        {"customer_id": customer_id, "tier": tier, "tier_at": at} for customer_id, (tier, at) in sorted(tiers.items())
    ]
    if rows:
        await session.execute(_upsert_tier, rows)


async def segments_for_update(session: AsyncSession, customer_ids: Collection[str]) -> dict[str, set[str]]:
    """The customers' segments, their rows locked (in key order) until the transaction ends."""
    rows = await session.execute(
        select(customers.c.customer_id, customers.c.segments)
        .where(customers.c.customer_id == any_(bindparam(None, sorted(customer_ids), type_=ARRAY(Text))))
        .order_by(customers.c.customer_id)
        .with_for_update()
    )
    return {row.customer_id: set(row.segments) for row in rows}


async def set_segments(session: AsyncSession, segments: Mapping[str, tuple[list[str], datetime]]) -> None:
    """customer → (segments, time of the change), in one statement."""
    rows = [
        {"customer_id": customer_id, "segments": names, "segments_at": at}
        for customer_id, (names, at) in sorted(segments.items())
    ]
    if rows:
        await session.execute(_upsert_segments, rows)


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
