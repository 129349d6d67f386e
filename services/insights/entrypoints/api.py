"""HTTP API of insights: period KPIs, cohorts and the anomalies raised on them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import runtime_of
from services.insights.domain.periods import Grain, periods_apart
from services.insights.handlers.churn import ChurnReports
from services.insights.handlers.clusters import Clusters
from services.insights.handlers.figures import Figures, RangeTooLong
from services.insights.settings import InsightsSettings

router = APIRouter(prefix="/v1", tags=["kpis"])
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]
PeriodQuery = Annotated[Grain, Query(description="Calendar period in UTC: week (ISO, Monday first), month or quarter.")]
FromQuery = Annotated[
    date | None,
    Query(alias="from", description="A day in the first period (YYYY-MM-DD); default: the last periods up to `to`."),
]
ToQuery = Annotated[
    date | None, Query(alias="to", description="A day in the last period (YYYY-MM-DD); default and limit: now.")
]


def figures_of(request: Request) -> Figures:
    runtime = runtime_of(request)
    settings = runtime.settings
    assert isinstance(settings, InsightsSettings)
    return Figures(settings, runtime.sessions, runtime.outbox)


def _check_range(request: Request, grain: Grain, first: date | None, last: date | None) -> None:
    settings = request.app.state.settings
    assert isinstance(settings, InsightsSettings)
    limit = settings.insights_max_periods
    if first is not None and last is not None:
        if first > last:
            raise _invalid("from", "must not be after `to`", "range_reversed")
        if periods_apart(first, last, grain) >= limit:
            raise _invalid("from", f"at most {limit} periods per query", "range_too_long")


def _invalid(field: str, message: str, code: str) -> Problem:
    return Problem(
        422, "Invalid request", f"{field}: {message}", errors=[{"field": field, "message": message, "code": code}]
    )


@router.get("/kpis", summary="Retention KPIs, one row per period, as of the clock")
async def get_kpis(
    request: Request, _: Reader, period: PeriodQuery = Grain.MONTH, first: FromQuery = None, last: ToQuery = None
) -> dict[str, Any]:
    _check_range(request, period, first, last)
    try:
        return await figures_of(request).kpi_rows(period, first, last)
    except RangeTooLong as exc:  # the defaults of `from` / `to` made it too long (a 500 before, found by fuzzing)
        raise _invalid("from", str(exc), "range_too_long") from exc


@router.get("/cohorts", summary="Customers by period of first purchase: share active and revenue k periods later")
async def get_cohorts(
    request: Request, _: Reader, period: PeriodQuery = Grain.MONTH, first: FromQuery = None, last: ToQuery = None
) -> dict[str, Any]:
    _check_range(request, period, first, last)
    try:
        return await figures_of(request).cohort_rows(period, first, last)
    except RangeTooLong as exc:  # the defaults of `from` / `to` made it too long (a 500 before, found by fuzzing)
        raise _invalid("from", str(exc), "range_too_long") from exc


@router.get("/anomalies", summary="KPI anomalies raised (value, baseline, deviation)")
async def get_anomalies(
    request: Request, _: Reader, period: PeriodQuery = Grain.MONTH, first: FromQuery = None, last: ToQuery = None
) -> dict[str, Any]:
    _check_range(request, period, first, last)
    try:
        return await figures_of(request).anomaly_rows(period, first, last)
    except RangeTooLong as exc:  # the defaults of `from` / `to` made it too long (a 500 before, found by fuzzing)
        raise _invalid("from", str(exc), "range_too_long") from exc


ReportPeriodQuery = Annotated[
    Grain | None, Query(description="Period of the report: week, month or quarter; default: the configured one.")
]
AtQuery = Annotated[
    date | None, Query(description="A day in the reported period (YYYY-MM-DD); default: the last closed period.")
]


@router.get(
    "/reports/churned",
    summary="Customers who became churned in a period, why, and the traits over-represented among them",
)
async def get_churned_report(
    request: Request, _: Reader, period: ReportPeriodQuery = None, at: AtQuery = None
) -> dict[str, Any]:
    runtime = runtime_of(request)
    settings = runtime.settings
    assert isinstance(settings, InsightsSettings)
    reports = ChurnReports(settings, runtime.sessions, runtime.outbox)
    return await reports.report(period or settings.insights_churn_report_grain, at)


def clusters_of(request: Request) -> Clusters:
    runtime = runtime_of(request)
    settings = runtime.settings
    assert isinstance(settings, InsightsSettings)
    return Clusters(settings, runtime.sessions, runtime.outbox)


@router.get("/clusters", summary="Behavioural clusters of the last fit: size, centre, and the centre in words")
async def get_clusters(request: Request, _: Reader) -> dict[str, Any]:
    return await clusters_of(request).described()


@router.post("/clusters/refit", summary="Refit the clusters now and publish the memberships that changed")
async def refit_clusters(request: Request, _: Annotated[Principal, Depends(require_scope("admin"))]) -> dict[str, Any]:
    return await clusters_of(request).refit()
