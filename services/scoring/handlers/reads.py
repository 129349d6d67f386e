"""Use cases behind scoring's read API: a customer's score, a page of scores, the fitted models."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters import reads


async def current_score(session: AsyncSession, customer_id: str) -> Any:
    return await reads.score(session, customer_id)


async def scores_page(
    session: AsyncSession,
    *,
    tier: str | None,
    stage: str | None,
    min_risk: float | None,
    after: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """A page of scores and the customer id the next page starts after (None: last page)."""
    # one row more than asked tells whether a next page exists without a count(*)
    rows = await reads.scores_after(session, tier=tier, stage=stage, min_risk=min_risk, after=after, limit=limit + 1)
    page = rows[:limit]
    return page, page[-1].customer_id if len(rows) > limit else None


async def models(session: AsyncSession, limit: int) -> list[Any]:
    return await reads.newest_models(session, limit)
