"""Counts the scored customers by grade into scoring's gauges (on a scrape, through the runtime)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring import metrics
from services.scoring.adapters.gauges import RISK_BANDS, grade_counts
from services.scoring.domain.lifecycle import Stage
from services.scoring.domain.rfm import Tier


async def refresh_grade_gauges(session: AsyncSession) -> None:
    # Every tier, stage and band is stated, zero included, so a graph shows an emptied group falling to zero.
    customers = {(tier.value, stage.value): 0.0 for tier in Tier for stage in Stage}
    risk = {(f"{band / RISK_BANDS:.1f}",): 0.0 for band in range(RISK_BANDS)}
    for tier, stage, band, count in await grade_counts(session):
        customers[(tier, stage)] = customers.get((tier, stage), 0.0) + count
        risk[(f"{band / RISK_BANDS:.1f}",)] += count
    metrics.CUSTOMERS.replace(customers)
    metrics.CHURN_RISK.replace(risk)
