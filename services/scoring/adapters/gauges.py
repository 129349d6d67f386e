"""The counts behind scoring's gauges: one grouped pass over `scores`."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import scores

RISK_BANDS = 10


async def grade_counts(session: AsyncSession) -> list[tuple[str, str, int, int]]:
    """(tier, stage, risk band 0..RISK_BANDS-1, customers) for every combination that has customers."""
    band = func.least(func.floor(scores.c.churn_risk * RISK_BANDS), RISK_BANDS - 1).label("band")
    query = select(scores.c.tier, scores.c.stage, band, func.count().label("n")).group_by(
        scores.c.tier, scores.c.stage, band
    )
    return [(row.tier, row.stage, int(row.band), int(row.n)) for row in await session.execute(query)]
