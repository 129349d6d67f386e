"""Satisfaction and complaint analysis for managers (customers:read)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from services.feedback.domain.nps import GroupBy, Period
from services.feedback.entrypoints.common import Deps, Reader, Session, utc
from services.feedback.handlers import analysis
from services.feedback.handlers.sealing import Vault

router = APIRouter(prefix="/v1/analysis", tags=["analysis"])

Since = Annotated[datetime | None, Query(description="Inclusive lower bound (UTC when no zone given).")]
Until = Annotated[datetime | None, Query(description="Exclusive upper bound.")]
GroupByQuery = Annotated[GroupBy, Query(description="tier, segment, day, week, month or all")]


@router.get("/nps", summary="NPS (% promoters - % detractors) by tier, segment or period")
async def nps(
    session: Session,
    _: Reader,
    group_by: GroupByQuery = "tier",
    since: Since = None,
    until: Until = None,
    survey_id: str | None = None,
) -> dict[str, Any]:
    groups = await analysis.satisfaction(session, "nps", group_by, utc(since), utc(until), survey_id)
    return {"metric": "nps", "group_by": group_by, "groups": groups}


@router.get("/csat", summary="CSAT (% answers 4-5, and the mean) by tier, segment or period")
async def csat(
    session: Session,
    _: Reader,
    group_by: GroupByQuery = "tier",
    since: Since = None,
    until: Until = None,
    survey_id: str | None = None,
) -> dict[str, Any]:
    groups = await analysis.satisfaction(session, "csat", group_by, utc(since), utc(until), survey_id)
    return {"metric": "csat", "group_by": group_by, "groups": groups}


@router.get("/complaints", summary="Tickets opened per category and period")
async def complaints(
    session: Session, _: Reader, period: Period = "week", since: Since = None, until: Until = None
) -> dict[str, Any]:
    buckets = await analysis.complaint_categories(session, period, utc(since), utc(until))
    return {"period": period, "buckets": buckets}


@router.get("/themes", summary="Top themes of comments (jieba for Chinese, words for English, TF-IDF)")
async def themes(
    session: Session,
    deps: Deps,
    _: Reader,
    source: Literal["surveys", "tickets", "all"] = "all",
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    documents, found = await analysis.themes(
        session, Vault(deps.personal), source, utc(since), utc(until), k, deps.settings.themes_max_documents
    )
    return {
        "source": source,
        "documents": documents,
        "themes": [{"term": t.term, "score": t.score, "count": t.count, "documents": t.documents} for t in found],
    }
