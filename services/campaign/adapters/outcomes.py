"""How a campaign's decided actions turned out: counts by kind, status and skip reason."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import actions, campaigns


async def campaign_exists(session: AsyncSession, campaign_id: str) -> bool:
    return (await session.scalar(select(campaigns.c.id).where(campaigns.c.id == campaign_id))) is not None


async def outcome_counts(session: AsyncSession, campaign_id: str) -> list[tuple[str, str, str | None, int]]:
    """(kind, status, reason, count) rows, largest first."""
    count = func.count().label("n")
    query = (
        select(actions.c.kind, actions.c.status, actions.c.reason, count)
        .where(actions.c.campaign_id == campaign_id)
        .group_by(actions.c.kind, actions.c.status, actions.c.reason)
        .order_by(count.desc(), actions.c.kind, actions.c.status, actions.c.reason)
    )
    return [(row.kind, row.status, row.reason, int(row.n)) for row in await session.execute(query)]
