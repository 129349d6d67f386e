"""Per-variant counts for the A/B report, computed in SQL over the campaign's own tables."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import actions, assignments, coupons, purchases
from services.campaign.domain.ab import GroupCounts


async def variant_counts(
    session: AsyncSession, campaign_id: str, conversion_window_days: int
) -> tuple[dict[str, GroupCounts], dict[str, int]]:
    """(audience, sent, converted) per group, and coupon redemptions per group.

    Converted = a purchase within the window after the customer's assignment (the first trigger),
    for every group alike, holdout included: the holdout is assigned at the same moment but sent nothing.
    """
    a = assignments.c
    sent = exists().where(
        actions.c.campaign_id == a.campaign_id,
        actions.c.customer_id == a.customer_id,
        actions.c.status.in_(("sent", "issued")),
    )
    converted = exists().where(
        and_(
            purchases.c.customer_id == a.customer_id,
            purchases.c.refunded.is_(False),
            purchases.c.purchased_at > a.assigned_at,
            purchases.c.purchased_at <= a.assigned_at + timedelta(days=conversion_window_days),
        )
    )
    rows = (
        await session.execute(
            select(
                a.variant,
                func.count(),
                func.count().filter(sent),
                func.count().filter(converted),
            )
            .where(a.campaign_id == campaign_id)
            .group_by(a.variant)
        )
    ).all()
    groups = {variant: GroupCounts(int(n), int(s), int(c)) for variant, n, s, c in rows}
    redeemed = (
        await session.execute(
            select(coupons.c.variant, func.count())
            .where(coupons.c.campaign_id == campaign_id, coupons.c.redeemed_at.is_not(None))
            .group_by(coupons.c.variant)
        )
    ).all()
    return groups, {str(variant): int(n) for variant, n in redeemed}
