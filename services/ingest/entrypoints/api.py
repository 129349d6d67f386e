"""HTTP API of ingest: upstream systems post events here, one at a time or in batches.

Bodies are read and validated by hand (one `validate_json` over the bytes) instead of through FastAPI
body parameters: that was the difference between ~3k and ~5k requests/s on one core (bench_ingest).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from libs.common.problems import PROBLEM_JSON, Problem
from services.ingest.domain.incoming import (
    InvalidEvent,
    MalformedJson,
    Shape,
    ValidEvent,
    validate_batch_json,
    validate_json,
    validate_python,
)
from services.ingest.entrypoints import openapi
from services.ingest.entrypoints.common import deps_of
from services.ingest.entrypoints.guard import authorize, media_type, read_body
from services.ingest.handlers.accept import Acceptance, accept_events, count_rejected
from services.ingest.handlers.deps import IngestDeps
from services.ingest.metrics import BATCH_SIZE
from services.ingest.settings import IngestSettings

router = APIRouter(prefix="/v1", tags=["events"])
_MAX_ITEMS = IngestSettings.model_fields["ingest_max_batch_items"].default

_PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed JSON", **_PROBLEM},
    401: {"description": "No or unknown API key", **_PROBLEM},
    403: {"description": "The key lacks events:write", **_PROBLEM},
    413: {"description": "Body too large", **_PROBLEM},
    415: {"description": "Unsupported content type", **_PROBLEM},
    422: {"description": "Invalid event; `errors[].field` names each offending field", **_PROBLEM},
    429: {"description": "Rate limit exceeded; see Retry-After", **_PROBLEM},
}


class EventAccepted(BaseModel):
    id: str
    # "erased": the event is from before its customer was erased; it is neither kept nor published.
    status: Literal["accepted", "duplicate", "erased"]


class ItemResult(BaseModel):
    index: int
    id: str | None
    status: Literal["accepted", "duplicate", "erased", "rejected"]
    errors: list[dict[str, Any]] | None = None


class BatchResult(BaseModel):
    accepted: int
    duplicates: int
    erased: int
    rejected: int
    results: list[ItemResult]


def _json(body: Any, status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _single_shape(request: Request) -> Shape:
    kind = media_type(request)
    if kind == openapi.CLOUDEVENTS_JSON:
        return "structured"
    if kind == "application/json":
        return "flat"
    hint = " (batches go to /v1/events:batch)" if kind == openapi.CLOUDEVENTS_BATCH_JSON else ""
    raise Problem(415, "Unsupported Media Type", f"'{kind}' is not accepted here{hint}")


@router.post(
    "/events",
    status_code=202,
    response_model=EventAccepted,
    summary="Post one upstream event",
    description="`application/json` (flattened) or `application/cloudevents+json` (CloudEvents structured mode). "
    "202: durable and published (or in the outbox while the broker is unreachable). "
    "200: the id was seen within the dedupe window (`duplicate`), or the event is from before its customer was "
    "erased (`erased`); not published.",
    responses={200: {"model": EventAccepted, "description": "Duplicate id"}, **_ERRORS},
    openapi_extra=openapi.single_event_body(),
)
async def post_event(request: Request) -> Response:
    principal = await authorize(request)
    ctx = deps_of(request)
    shape = _single_shape(request)
    body = await read_body(request, ctx.settings.ingest_max_event_bytes)
    try:
        event = validate_json(body, shape, window=ctx.settings.time_window)
    except MalformedJson as exc:
        raise Problem(400, "Malformed JSON", str(exc), errors=[{"field": "body", "message": str(exc)}]) from exc
    except InvalidEvent as exc:
        count_rejected([_type_of(body)], principal.source)
        raise Problem(422, "Invalid event", str(exc), errors=exc.errors) from exc
    [outcome] = await _accept(ctx, [event], principal.source)
    return _json({"id": outcome.event_id, "status": outcome.status}, 202 if outcome.status == "accepted" else 200)


async def _accept(ctx: IngestDeps, events: list[ValidEvent], source: str) -> list[Acceptance]:
    """Single events and small batches go through the group committer; large batches are a group already."""
    if ctx.committer is not None and len(events) <= ctx.settings.ingest_group_commit_max_batch:
        return await ctx.committer.submit(events, source)
    return await accept_events(ctx, events, source)


def _type_of(body: bytes) -> str | None:
    """Best effort, for the rejected-events metric only."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def _batch_shape(request: Request) -> Shape:
    kind = media_type(request)
    if kind == openapi.CLOUDEVENTS_BATCH_JSON:
        return "structured"
    if kind == "application/json":
        return "flat"
    raise Problem(415, "Unsupported Media Type", f"'{kind}' is not accepted here")


def _batch_items(body: bytes, shape: Shape, max_items: int) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "Malformed JSON", str(exc), errors=[{"field": "body", "message": str(exc)}]) from exc
    if shape == "structured":
        items, where = parsed, "body"
    else:
        if not isinstance(parsed, dict) or set(parsed) != {"events"}:
            raise Problem(
                422,
                "Invalid batch",
                'the body must be {"events": [...]}',
                errors=[{"field": "events", "message": 'expected an object with only "events"', "code": "shape"}],
            )
        items, where = parsed["events"], "events"
    if not isinstance(items, list):
        raise Problem(422, "Invalid batch", "expected a list", errors=[{"field": where, "message": "expected a list"}])
    if len(items) > max_items:
        raise Problem(
            422,
            "Batch too large",
            f"at most {max_items} events per batch, got {len(items)}",
            errors=[{"field": where, "message": f"at most {max_items} items", "code": "too_long"}],
        )
    return items


@router.post(
    "/events:batch",
    status_code=202,
    response_model=BatchResult,
    summary="Post up to 1,000 upstream events",
    description='`application/json` `{"events": [...]}` or `application/cloudevents-batch+json` (a JSON array). '
    "Each item is accepted, duplicate or rejected on its own: one bad item never sinks the others. "
    "202 when at least one item was accepted, 200 otherwise.",
    responses={200: {"model": BatchResult, "description": "Nothing new was accepted"}, **_ERRORS},
    openapi_extra=openapi.batch_body(_MAX_ITEMS),
)
async def post_batch(request: Request) -> Response:
    principal = await authorize(request)
    ctx = deps_of(request)
    shape = _batch_shape(request)
    body = await read_body(request, ctx.settings.max_body_bytes)
    max_items = ctx.settings.ingest_max_batch_items
    window = ctx.settings.time_window
    all_valid = validate_batch_json(body, shape, max_items, window=window)
    if all_valid is not None:
        return await _answer_batch(
            ctx, principal.source, all_valid, list(range(len(all_valid))), [None] * len(all_valid), 0
        )
    items = _batch_items(body, shape, max_items)
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid: list[ValidEvent] = []
    positions: list[int] = []
    rejected_types: list[str | None] = []
    for index, item in enumerate(items):
        try:
            valid.append(validate_python(item, shape, window=window))
            positions.append(index)
        except InvalidEvent as exc:
            item_id = item.get("id") if isinstance(item, dict) else None
            kind = item.get("type") if isinstance(item, dict) else None
            rejected_types.append(kind if isinstance(kind, str) else None)
            results[index] = {
                "index": index,
                "id": item_id if isinstance(item_id, str) else None,
                "status": "rejected",
                "errors": exc.errors,
            }
    if rejected_types:
        count_rejected(rejected_types, principal.source)
    return await _answer_batch(ctx, principal.source, valid, positions, results, len(rejected_types))


async def _answer_batch(
    ctx: IngestDeps,
    source: str,
    valid: list[ValidEvent],
    positions: list[int],
    results: list[dict[str, Any] | None],
    rejected: int,
) -> Response:
    """Accepts the valid events and answers one result per item; `results` already holds the rejected ones."""
    BATCH_SIZE.labels("batch").observe(len(results))
    outcomes = await _accept(ctx, valid, source)
    accepted = erased = 0
    for index, outcome in zip(positions, outcomes, strict=True):
        accepted += outcome.status == "accepted"
        erased += outcome.status == "erased"
        results[index] = {"index": index, "id": outcome.event_id, "status": outcome.status}
    answer = {
        "accepted": accepted,
        "duplicates": len(outcomes) - accepted - erased,
        "erased": erased,
        "rejected": rejected,
        "results": results,
    }
    return _json(answer, 202 if accepted else 200)
