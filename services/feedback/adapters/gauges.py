"""The counts behind feedback's gauges."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import sla_breaches


async def breach_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(tier, clock) -> breaches."""
    query = select(sla_breaches.c.tier, sla_breaches.c.clock, func.count().label("n"))
    query = query.group_by(sla_breaches.c.tier, sla_breaches.c.clock)
    return {(row.tier, row.clock): int(row.n) for row in await session.execute(query)}
