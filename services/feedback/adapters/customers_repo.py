"""The customer facts feedback keeps (tier from scoring, segments from profile) and erasure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import customers, sla_breaches, survey_responses, survey_tokens, tickets


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


async def erase(session: AsyncSession, customer_id: str) -> dict[str, int]:
    """Deletes everything feedback holds about the customer; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for table in (tickets, sla_breaches, survey_responses, survey_tokens, customers):
        result = await session.execute(delete(table).where(table.c.customer_id == customer_id))
        deleted[table.name] = int(getattr(result, "rowcount", 0) or 0)
    return deleted
