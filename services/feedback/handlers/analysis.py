"""Analysis use cases: NPS/CSAT by tier, segment or period, complaint categories over time, top themes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters import reports
from services.feedback.domain.nps import GroupBy, Period, SurveyAnswer, csat_report, nps_report, period_bucket
from services.feedback.domain.themes import Theme, top_themes
from services.feedback.handlers.sealing import Vault

UNKNOWN = "unknown"
Metric = Literal["nps", "csat"]


def _answers(rows: list[reports.ResponseRow], group_by: GroupBy) -> Iterator[SurveyAnswer]:
    for row in rows:
        # A customer in several segments counts once in each; one in none is reported as "unknown",
        # like a customer scoring has not graded yet, so totals by any grouping add up to all answers.
        segments: list[str | None] = list(row.segments) if group_by == "segment" and row.segments else [None]
        for segment in segments:
            yield SurveyAnswer(
                customer_id=row.customer_id,
                responded_at=row.responded_at.astimezone(UTC),
                nps=row.nps,
                csat=row.csat,
                tier=row.tier or UNKNOWN,
                segment=segment or UNKNOWN,
            )


async def satisfaction(
    session: AsyncSession,
    metric: Metric,
    group_by: GroupBy,
    since: datetime | None,
    until: datetime | None,
    survey_id: str | None,
) -> list[dict[str, Any]]:
    rows = await reports.responses(session, since, until, survey_id)
    answers = list(_answers(rows, group_by))
    if metric == "nps":
        return [
            {
                "group": key,
                "total": r.total,
                "promoters": r.promoters,
                "passives": r.passives,
                "detractors": r.detractors,
                "nps": r.nps,
            }
            for key, r in nps_report(answers, group_by).items()
        ]
    return [
        {"group": key, "total": r.total, "satisfied": r.satisfied, "csat": r.csat, "mean": r.mean}
        for key, r in csat_report(answers, group_by).items()
    ]


async def complaint_categories(
    session: AsyncSession, period: Period, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    buckets: dict[str, dict[str, int]] = {}
    for start, category, count in await reports.complaint_counts(session, period, since, until):
        label = period_bucket(start.replace(tzinfo=UTC), period)
        buckets.setdefault(label, {})[category] = count
    return [
        {"period": label, "total": sum(counts.values()), "categories": counts}
        for label, counts in sorted(buckets.items())
    ]


async def themes(
    session: AsyncSession,
    vault: Vault,
    source: str,
    since: datetime | None,
    until: datetime | None,
    k: int,
    limit: int,
) -> tuple[int, list[Theme]]:
    # Sealed at rest: opened here, in one key request, and only for the extractor.
    texts = await vault.open_texts(await reports.comments(session, source, since, until, limit))
    # jieba segmentation is CPU-bound (and loads its dictionary on first use): keep it off the event loop.
    return len(texts), await asyncio.to_thread(top_themes, texts, k)
