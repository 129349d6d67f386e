"""HTTP API of ingest: upstream systems post events here."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import runtime_of
from services.ingest.domain.incoming import IncomingEvent, InvalidEvent, validate_event
from services.ingest.handlers.accept import accept_events

router = APIRouter(prefix="/v1", tags=["events"])


class EventAccepted(BaseModel):
    id: str
    status: Literal["accepted", "duplicate"]


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    summary="Post one upstream event",
    responses={200: {"model": EventAccepted, "description": "Duplicate id: accepted before, not published again"}},
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": IncomingEvent.model_json_schema()}}}},
)
async def post_event(request: Request, principal: Principal = Depends(require_scope("events:write"))) -> JSONResponse:
    raw = await _json_body(request)
    try:
        event = validate_event(raw, source=principal.source)
    except InvalidEvent as exc:
        raise Problem(422, "Invalid event", str(exc), errors=exc.errors) from exc
    runtime = runtime_of(request)
    [outcome] = await accept_events([event], runtime.sessions, runtime.publisher)
    return JSONResponse(
        {"id": outcome.event_id, "status": outcome.status}, status_code=202 if outcome.status == "accepted" else 200
    )


async def _json_body(request: Request) -> Any:
    body = await request.body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "Malformed JSON", str(exc), errors=[{"field": "body", "message": str(exc)}]) from exc
