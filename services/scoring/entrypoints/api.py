"""HTTP API of scoring."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.envelope import EnvelopeError, format_time, parse_time
from libs.common.problems import Problem
from libs.common.runtime import db_session, runtime_of
from services.scoring.domain.lifecycle import Stage
from services.scoring.domain.purchase_models import TIME_UNIT
from services.scoring.domain.rfm import Tier
from services.scoring.handlers import reads
from services.scoring.handlers.deps import ScoringDeps
from services.scoring.handlers.history import score_history_page
from services.scoring.handlers.refit import RefitInProgress, describe, refit

router = APIRouter(prefix="/v1", tags=["scores"])
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]
Session = Annotated[AsyncSession, Depends(db_session)]


def deps_of(request: Request) -> ScoringDeps:
    deps: ScoringDeps = request.app.state.scoring
    return deps


def _encode_cursor(customer_id: str) -> str:
    return base64.urlsafe_b64encode(customer_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = (cursor + "=" * (-len(cursor) % 4)).encode()
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Problem(
            422,
            "Invalid request",
            "cursor: not a cursor returned by this API",
            errors=[{"field": "cursor", "message": "not a cursor returned by this API", "code": "invalid_cursor"}],
        ) from exc


def _view(customer_id: str, document: dict[str, Any], updated_at: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, **document, "updated_at": format_time(updated_at)}


@router.get("/customers/{customer_id}/score", summary="A customer's current score")
async def get_score(customer_id: str, session: Session, _: Reader) -> dict[str, Any]:
    row = await reads.current_score(session, customer_id)
    if row is None:
        raise Problem(404, "Not Found", f"no score for customer '{customer_id}'")
    return _view(customer_id, row.score, row.updated_at)


def _history_cursor(at: datetime, event_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([format_time(at), event_id])).decode().rstrip("=")


def _decode_history_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, event_id = orjson.loads(_decode_cursor(cursor))
        return parse_time(at), str(event_id)
    except (orjson.JSONDecodeError, TypeError, ValueError, EnvelopeError) as exc:
        raise Problem(
            422,
            "Invalid request",
            "cursor: not a cursor returned by this API",
            errors=[{"field": "cursor", "message": "not a cursor returned by this API", "code": "invalid_cursor"}],
        ) from exc


def _history_view(row: Any) -> dict[str, Any]:
    return {
        "at": format_time(row.at),
        "as_of": format_time(row.as_of),
        "trigger": row.trigger,
        "cause_id": row.cause_id,
        "event_id": row.event_id,
        "model_version": row.model_version,
        "changes": list(row.changes),
        "tier": row.tier,
        "stage": row.stage,
        "churn_risk": row.churn_risk,
        "clv": row.clv,
        "previous": row.previous,
        "reasons": row.reasons,
    }


@router.get(
    "/customers/{customer_id}/score/history",
    summary="Every material change of a customer's score, newest first, paged",
    responses={404: {"description": "no score history for this customer"}},
)
async def get_score_history(
    customer_id: str,
    session: Session,
    _: Reader,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    before = _decode_history_cursor(cursor) if cursor else None
    page, after = await score_history_page(session, customer_id, before, limit)
    if not page and before is None:
        raise Problem(404, "Not Found", f"no score history for customer '{customer_id}'")
    return {
        "customer_id": customer_id,
        "items": [_history_view(row) for row in page],
        "next_cursor": None if after is None else _history_cursor(*after),
    }


@router.get("/scores", summary="Scores filtered by tier, stage and minimum churn risk, paged by customer id")
async def list_scores(
    session: Session,
    _: Reader,
    tier: Annotated[Tier | None, Query(description="high, medium or low")] = None,
    stage: Annotated[Stage | None, Query(description="lifecycle stage")] = None,
    min_risk: Annotated[float | None, Query(ge=0.0, le=1.0, description="churn risk at least this")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    page, after = await reads.scores_page(
        session,
        tier=None if tier is None else tier.value,
        stage=None if stage is None else stage.value,
        min_risk=min_risk,
        after=_decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    return {
        "items": [_view(row.customer_id, row.score, row.updated_at) for row in page],
        "next_cursor": None if after is None else _encode_cursor(after),
    }


def _model_view(row: Any) -> dict[str, Any]:
    return {
        "version": row.version,
        "fitted_at": format_time(row.fitted_at),
        "as_of": format_time(row.as_of),
        "n_customers": row.n_customers,
        "n_buyers": row.n_buyers,
        "n_unique_triples": row.n_unique_triples,
        "small_base": row.small_base,
        # every duration (recency, T, alpha, beta, the holdout) is in this unit
        "time_unit": TIME_UNIT,
        "bgnbd": row.bgnbd,
        "gamma_gamma": row.gamma_gamma,
        "chosen_model": row.chosen_model,
        "candidates": row.candidates or [],
        "holdout": row.holdout,
        "rfm_edges": row.rfm_edges,
        "diagnostics": row.diagnostics,
    }


@router.get("/models", summary="Fitted model versions with their parameters, newest first")
async def list_models(session: Session, _: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
    return {"items": [_model_view(row) for row in await reads.models(session, limit)]}


@router.post(
    "/models:refit",
    summary="Refit the models now and rescore every customer",
    responses={409: {"description": "a refit is already running"}},
)
async def refit_now(request: Request, _: Annotated[Principal, Depends(require_scope("admin"))]) -> dict[str, Any]:
    runtime = runtime_of(request)
    try:
        result = await refit(deps_of(request), runtime.sessions, runtime.outbox, trigger="api")
    except RefitInProgress as exc:
        raise Problem(409, "Conflict", str(exc)) from exc
    return describe(result)
