"""Counts SLA breaches into feedback's gauges (on a scrape, through the runtime)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback import metrics
from services.feedback.adapters.gauges import breach_counts


async def refresh_breach_gauges(session: AsyncSession) -> None:
    metrics.SLA_BREACHES.replace({labels: float(n) for labels, n in (await breach_counts(session)).items()})
