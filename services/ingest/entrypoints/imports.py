"""Bulk import of history (`POST /v1/imports`) and replay of the event log (`POST /v1/replays`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from libs.common.auth import Principal
from libs.common.events import UPSTREAM_EVENT_TYPES
from libs.common.problems import Problem
from services.ingest.domain.mapping import MappingError, RowMapping
from services.ingest.domain.rows import Format
from services.ingest.entrypoints import openapi
from services.ingest.entrypoints.api import _json
from services.ingest.entrypoints.common import deps_of
from services.ingest.entrypoints.guard import administrator, events_writer, media_type
from services.ingest.handlers.imports import import_stream
from services.ingest.handlers.replay import replay

router = APIRouter(prefix="/v1")

IMPORTS_PATH = "/v1/imports"


class ImportResult(BaseModel):
    import_id: str
    rows: int
    accepted: int
    duplicates: int
    erased: int = Field(description="Rows from before their customer was erased: neither kept nor published.")
    rejected: int
    rejections: list[dict[str, Any]] = Field(description="Rejected rows: `{line, errors}` (first 1,000).")
    rejections_truncated: bool


def _format(request: Request, declared: str | None) -> Format:
    if declared in ("csv", "jsonl"):
        return declared  # type: ignore[return-value]
    kind = media_type(request)
    if kind in ("text/csv", "application/csv"):
        return "csv"
    if kind in ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines"):
        return "jsonl"
    raise Problem(415, "Unsupported Media Type", "send text/csv or application/x-ndjson, or say ?format=csv|jsonl")


@router.post(
    "/imports",
    tags=["imports"],
    response_model=ImportResult,
    summary="Import a CSV or JSON-lines file of any size (streamed)",
    description="Rows are mapped with `map=column=field` (e.g. `map=cust=customer_id`, `map=total=data.amount`) "
    "and `set=field=value` constants. Rows without a mapped `id` get one derived from `import_id` and the line "
    "number, so posting the same file again resumes an interrupted import without duplicates. "
    "The body size limit does not apply here.",
    openapi_extra=openapi.import_body(),
)
async def post_import(
    request: Request,
    # A dependency, so that the key is checked before the query is validated (a caller without a key gets 401).
    principal: Annotated[Principal, Depends(events_writer)],
    type: Annotated[str, Query(description="Event type of every row (JSON lines may name their own).")],
    import_id: Annotated[str, Query(min_length=1, max_length=128, description="Stable identity of the file.")],
    map: Annotated[list[str] | None, Query(description="column=field, repeatable")] = None,
    set: Annotated[list[str] | None, Query(description="field=value, repeatable")] = None,
    format: Annotated[str | None, Query(pattern="^(csv|jsonl)$")] = None,
) -> Response:
    if type not in UPSTREAM_EVENT_TYPES:
        raise Problem(422, "Unknown event type", errors=[{"field": "type", "message": f"unknown type '{type}'"}])
    fmt = _format(request, format)
    try:
        mapping = RowMapping.parse(type, import_id, map or [], set or [])
    except MappingError as exc:
        raise Problem(422, "Invalid mapping", str(exc), errors=[{"field": "map", "message": str(exc)}]) from exc
    if fmt == "csv" and not mapping.columns:
        raise Problem(422, "Invalid mapping", "CSV imports need at least one map=column=field")

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            yield chunk

    report = await import_stream(deps_of(request), chunks(), fmt, mapping, principal.source)
    return _json(report.as_json(), 200)


class ReplayRequest(BaseModel):
    start: AwareDatetime = Field(alias="from", description="Event time, inclusive.")
    end: AwareDatetime = Field(alias="to", description="Event time, exclusive.")
    types: list[str] | None = None


class ReplayResult(BaseModel):
    replayed: int


@router.post(
    "/replays",
    tags=["operations"],
    response_model=ReplayResult,
    summary="Re-publish an event-time range of the event log (admin)",
    description="Safe at any time: every consumer dedupes on ce_id. Needs the broker.",
)
async def post_replay(
    request: Request, body: ReplayRequest, _: Annotated[Principal, Depends(administrator)]
) -> Response:
    start: datetime = body.start
    end: datetime = body.end
    if end <= start:
        raise Problem(422, "Empty range", errors=[{"field": "to", "message": "must be after from"}])
    count = await replay(deps_of(request), start, end, body.types)
    return _json({"replayed": count}, 200)
