"""Reads and writes of scoring's tables; rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters.tables import clock, facts, models, scores
from services.scoring.domain.bgnbd import BgNbdParams
from services.scoring.domain.customer_score import ScoringModel
from services.scoring.domain.facts import StoredFacts
from services.scoring.domain.gamma_gamma import GammaGammaParams
from services.scoring.domain.policy import ActiveModel
from services.scoring.domain.rfm import RankReference, RfmEdges

_FACT_FIELDS = tuple(f.name for f in fields(StoredFacts))
# asyncpg allows 32767 bind parameters per statement; facts has ~20 columns
_ROWS_PER_STATEMENT = 1000


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        yield rows[start : start + _ROWS_PER_STATEMENT]


async def lock_and_load(
    session: AsyncSession, customer_ids: Sequence[str], *, create_missing: bool = True
) -> tuple[dict[str, StoredFacts], dict[str, dict[str, Any]]]:
    """Facts and current score documents of ``customer_ids``, rows locked in id order so that a
    consumer batch and a refit batch touching the same customers cannot deadlock.

    ``create_missing`` first inserts an empty facts row for customers not seen yet. Without it,
    the profile and feedback consumers could both find no row for a new customer, both build facts
    from nothing, and the second upsert would overwrite the first's facts. With it, the second
    insert waits on the first's uncommitted row and the lock below then reads the committed facts.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}, {}
    if create_missing:
        await session.execute(pg_insert(facts).values([{"customer_id": cid} for cid in ids]).on_conflict_do_nothing())
    fact_rows = (
        await session.execute(
            select(facts).where(facts.c.customer_id.in_(ids)).order_by(facts.c.customer_id).with_for_update()
        )
    ).all()
    score_rows = (
        await session.execute(
            select(scores.c.customer_id, scores.c.score)
            .where(scores.c.customer_id.in_(ids))
            .order_by(scores.c.customer_id)
            .with_for_update()
        )
    ).all()
    loaded = {row.customer_id: StoredFacts(**{name: row._mapping[name] for name in _FACT_FIELDS}) for row in fact_rows}
    return loaded, {row.customer_id: row.score for row in score_rows}


async def save(session: AsyncSession, stored: Sequence[StoredFacts], documents: dict[str, dict[str, Any]]) -> None:
    if stored:
        rows = [asdict(f) for f in stored]
        for chunk in _chunks(rows):
            statement = pg_insert(facts).values(chunk)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[facts.c.customer_id],
                    set_={
                        **{n: statement.excluded[n] for n in _FACT_FIELDS if n != "customer_id"},
                        "updated_at": func.now(),
                    },
                )
            )
    if documents:
        rows = [
            {
                "customer_id": customer_id,
                "tier": doc["tier"],
                "stage": doc["stage"],
                "churn_risk": doc["churn_risk"],
                "clv": doc["clv"],
                "model_version": doc["model_version"],
                "score": doc,
                "as_of": datetime.fromisoformat(doc["as_of"].replace("Z", "+00:00")),
            }
            for customer_id, doc in documents.items()
        ]
        for chunk in _chunks(rows):
            statement = pg_insert(scores).values(chunk)
            columns = ("tier", "stage", "churn_risk", "clv", "model_version", "score", "as_of")
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[scores.c.customer_id],
                    set_={**{n: statement.excluded[n] for n in columns}, "updated_at": func.now()},
                )
            )


async def erase(session: AsyncSession, customer_ids: Iterable[str]) -> None:
    ids = sorted(set(customer_ids))
    if ids:
        await session.execute(delete(facts).where(facts.c.customer_id.in_(ids)))
        await session.execute(delete(scores).where(scores.c.customer_id.in_(ids)))


async def newest_event_time(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(clock.c.newest_event_at).where(clock.c.id == 1))


async def advance_clock(session: AsyncSession, seen: datetime) -> None:
    """Last statement of a transaction on purpose: the row lock is then held only while committing."""
    await session.execute(
        update(clock)
        .where(clock.c.id == 1)
        .where((clock.c.newest_event_at.is_(None)) | (clock.c.newest_event_at < seen))
        .values(newest_event_at=seen)
    )


async def latest_model_version(session: AsyncSession) -> int | None:
    version = await session.scalar(select(func.max(models.c.version)))
    return None if version is None else int(version)


def model_from_row(row: Row[Any]) -> ActiveModel:
    edges = row.rfm_edges
    model = ScoringModel(
        rfm_edges=RfmEdges(
            recency=tuple(edges["recency"]), frequency=tuple(edges["frequency"]), monetary=tuple(edges["monetary"])
        ),
        rfm_rank=RankReference(np.asarray(row.rfm_rank, dtype=np.float64)),
        bgnbd=BgNbdParams(**row.bgnbd) if row.bgnbd else None,
        gamma_gamma=GammaGammaParams(**row.gamma_gamma) if row.gamma_gamma else None,
        clv_rank=None if row.clv_rank is None else RankReference(np.asarray(row.clv_rank, dtype=np.float64)),
    )
    return ActiveModel(version=int(row.version), model=model, small_base=bool(row.small_base))


async def load_model(session: AsyncSession, version: int) -> ActiveModel:
    row = (await session.execute(select(models).where(models.c.version == version))).one()
    return model_from_row(row)
