"""The queries behind scoring's read API: current scores and fitted models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import models, scores


async def score(session: AsyncSession, customer_id: str) -> Any:
    query = select(scores.c.score, scores.c.updated_at).where(scores.c.customer_id == customer_id)
    return (await session.execute(query)).first()


async def scores_after(
    session: AsyncSession,
    *,
    tier: str | None,
    stage: str | None,
    min_risk: float | None,
    after: str | None,
    limit: int,
) -> list[Any]:
    """Up to `limit` scores by customer id, from after `after` on, that match every filter given."""
    query = select(scores.c.customer_id, scores.c.score, scores.c.updated_at).order_by(scores.c.customer_id)
    if tier is not None:
        query = query.where(scores.c.tier == tier)
    if stage is not None:
        query = query.where(scores.c.stage == stage)
    if min_risk is not None:
        query = query.where(scores.c.churn_risk >= min_risk)
    if after is not None:
        query = query.where(scores.c.customer_id > after)
    return list((await session.execute(query.limit(limit))).all())


async def newest_models(session: AsyncSession, limit: int) -> list[Any]:
    columns = [c for c in models.c if c.name not in ("rfm_rank", "clv_rank")]  # rank samples are bulky
    return list((await session.execute(select(*columns).order_by(models.c.version.desc()).limit(limit))).all())
