"""Read-side queries behind the analysis endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import survey_responses, tickets


@dataclass(frozen=True)
class ResponseRow:
    customer_id: str
    responded_at: datetime
    nps: int | None
    csat: int | None
    tier: str | None
    segments: list[str]


def _window(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    clauses = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return clauses


async def responses(
    session: AsyncSession, since: datetime | None, until: datetime | None, survey_id: str | None
) -> list[ResponseRow]:
    r = survey_responses.c
    query = select(r.customer_id, r.responded_at, r.nps, r.csat, r.tier, r.segments).where(
        *_window(r.responded_at, since, until)
    )
    if survey_id is not None:
        query = query.where(r.survey_id == survey_id)
    rows = await session.execute(query)
    return [ResponseRow(x.customer_id, x.responded_at, x.nps, x.csat, x.tier, list(x.segments)) for x in rows]


async def complaint_counts(
    session: AsyncSession, period: str, since: datetime | None, until: datetime | None
) -> Sequence[tuple[datetime, str, int]]:
    """(bucket start in UTC, category, tickets opened); `period` is day/week/month, checked by the caller."""
    bucket = func.date_trunc(literal_column(f"'{period}'"), func.timezone("UTC", tickets.c.opened_at)).label("bucket")
    query = (
        select(bucket, tickets.c.category, func.count())
        .where(*_window(tickets.c.opened_at, since, until))
        .group_by(bucket, tickets.c.category)
        .order_by(bucket, tickets.c.category)
    )
    return [(b, category, int(n)) for b, category, n in (await session.execute(query)).all()]


async def comments(
    session: AsyncSession, source: str, since: datetime | None, until: datetime | None, limit: int
) -> list[tuple[str, str]]:
    """The newest `limit` non-empty comments, each as (field, text as stored): survey comments ("survey.comment"),
    ticket texts ("ticket.text"), or both."""
    texts: list[tuple[datetime, str, str]] = []
    if source in ("surveys", "all"):
        r = survey_responses.c
        rows = await session.execute(
            select(r.responded_at, r.comment)
            .where(r.comment.is_not(None), r.comment != "", *_window(r.responded_at, since, until))
            .order_by(r.responded_at.desc())
            .limit(limit)
        )
        texts.extend((at, "survey.comment", text) for at, text in rows)
    if source in ("tickets", "all"):
        t = tickets.c
        rows = await session.execute(
            select(t.opened_at, t.text)
            .where(t.text != "", *_window(t.opened_at, since, until))
            .order_by(t.opened_at.desc())
            .limit(limit)
        )
        texts.extend((at, "ticket.text", text) for at, text in rows)
    texts.sort(key=lambda item: item[0], reverse=True)
    return [(field, text) for _, field, text in texts[:limit]]
