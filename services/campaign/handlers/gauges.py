"""Counts campaign's decisions and coupons into its gauges (on a scrape, through the runtime)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign import metrics
from services.campaign.adapters.gauges import action_counts, coupon_counts


async def refresh_action_gauges(session: AsyncSession) -> None:
    metrics.ACTIONS.replace({labels: float(n) for labels, n in (await action_counts(session)).items()})
    coupons = await coupon_counts(session)
    metrics.COUPONS_ISSUED.replace({(campaign,): float(issued) for campaign, (issued, _) in coupons.items()})
    metrics.COUPONS_REDEEMED.replace({(campaign,): float(redeemed) for campaign, (_, redeemed) in coupons.items()})
