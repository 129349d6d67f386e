"""The counts behind campaign's gauges: one grouped pass over `actions` and one over `coupons`."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import actions, coupons


async def action_counts(session: AsyncSession) -> dict[tuple[str, str, str, str], int]:
    """(kind, channel, status, reason) -> actions; a missing channel or reason is ""."""
    query = select(actions.c.kind, actions.c.channel, actions.c.status, actions.c.reason, func.count().label("n"))
    query = query.group_by(actions.c.kind, actions.c.channel, actions.c.status, actions.c.reason)
    return {
        (row.kind, row.channel or "", row.status, row.reason or ""): int(row.n) for row in await session.execute(query)
    }


async def coupon_counts(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """campaign id -> (issued, redeemed)."""
    redeemed = func.count(coupons.c.redeemed_at).label("redeemed")
    query = select(coupons.c.campaign_id, func.count().label("issued"), redeemed).group_by(coupons.c.campaign_id)
    return {row.campaign_id: (int(row.issued), int(row.redeemed)) for row in await session.execute(query)}
