"""Segment CRUD and member lists. Conditions use the JSON language of `services.profile.domain.segments`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.clock import as_of
from libs.common.envelope import format_time
from libs.common.problems import Problem
from libs.common.runtime import db_session, runtime_of
from services.profile.domain import Condition, InvalidCondition, parse_condition
from services.profile.handlers import segments
from services.profile.handlers.profiles import SegmentDefinitions
from services.profile.handlers.sealing import Vault
from services.profile.handlers.segments import Recomputed, SegmentExists, SegmentNotFound, SegmentRow
from services.profile.handlers.timeline import InvalidCursor, decode_cursor, encode_cursor

Session = Annotated[AsyncSession, Depends(db_session)]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]
Writer = Annotated[Principal, Depends(require_scope("customers:write"))]

router = APIRouter(prefix="/v1", tags=["segments"])
# Shared by the HTTP paths of this process that change profiles (tag edits re-evaluate segments).
SEGMENT_DEFINITIONS = SegmentDefinitions()

SegmentId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str = Field(min_length=1, max_length=200)
    condition: dict[str, Any] = Field(
        description='e.g. {"all": [{"field": "orders.count", "op": ">=", "value": 3}, '
        '{"field": "region", "op": "=", "value": "east"}]}'
    )


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    condition: dict[str, Any] | None = None


def _parse(raw: dict[str, Any]) -> Condition:
    try:
        return parse_condition(raw)
    except InvalidCondition as exc:
        pointer = f"/condition{exc.path if exc.path != '/' else ''}"
        raise Problem(
            422,
            "Invalid segment condition",
            f"{pointer}: {exc.message}",
            errors=[{"field": pointer, "message": exc.message, "code": "invalid_condition"}],
        ) from exc


def _body(row: SegmentRow, recomputed: Recomputed | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "condition": row.condition,
        "version": row.version,
        "created_at": format_time(row.created_at),
        "updated_at": format_time(row.updated_at),
    }
    if recomputed is not None:
        body["membership"] = {"members": recomputed.members, "entered": recomputed.entered, "left": recomputed.left}
    return body


def _not_found(exc: SegmentNotFound) -> Problem:
    return Problem(404, "Not Found", str(exc))


def _vault(request: Request) -> Vault:
    return Vault(runtime_of(request).personal)


def _clock(request: Request) -> Any:
    mode = request.app.state.settings.clock_mode
    return lambda newest: as_of(mode, newest)


@router.post("/segments", status_code=201, summary="Define a segment; membership is computed at once")
async def create_segment(
    body: SegmentIn,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    condition = _parse(body.condition)
    segment_id = body.id or f"seg-{uuid.uuid4().hex[:12]}"
    try:
        row, recomputed = await segments.create_segment(
            session,
            runtime_of(request).outbox,
            _vault(request),
            _clock(request),
            segment_id,
            body.name,
            body.condition,
            condition,
        )
    except SegmentExists as exc:
        raise Problem(409, "Conflict", str(exc)) from exc
    return _body(row, recomputed)


@router.get("/segments", summary="All segments")
async def list_segments(
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    return {"items": [_body(row) for row in await segments.all_segments(session)]}


@router.get("/segments/{segment_id}", summary="One segment")
async def get_segment(
    segment_id: SegmentId,
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    try:
        return _body(await segments.segment(session, segment_id))
    except SegmentNotFound as exc:
        raise _not_found(exc) from exc


@router.put("/segments/{segment_id}", summary="Change a segment; membership is recomputed at once")
async def update_segment(
    segment_id: SegmentId,
    body: SegmentUpdate,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    condition = _parse(body.condition) if body.condition is not None else None
    try:
        row, recomputed = await segments.update_segment(
            session,
            runtime_of(request).outbox,
            _vault(request),
            _clock(request),
            segment_id,
            body.name,
            body.condition,
            condition,
        )
    except SegmentNotFound as exc:
        raise _not_found(exc) from exc
    return _body(row, recomputed)


@router.delete("/segments/{segment_id}", summary="Delete a segment; its members leave it")
async def delete_segment(
    segment_id: SegmentId,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    try:
        recomputed = await segments.delete_segment(
            session, runtime_of(request).outbox, _vault(request), _clock(request), segment_id
        )
    except SegmentNotFound as exc:
        raise _not_found(exc) from exc
    return {"id": segment_id, "deleted": True, "left": recomputed.left}


@router.get("/segments/{segment_id}/members", summary="Customers in a segment, paged by customer id")
async def segment_members(
    segment_id: SegmentId,
    session: Session,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> dict[str, Any]:
    after = ""
    if cursor:
        try:
            (after,) = decode_cursor(cursor, (str,))
        except InvalidCursor as exc:
            raise Problem(
                422, "Invalid request", str(exc), errors=[{"field": "cursor", "message": str(exc), "code": "invalid"}]
            ) from exc
    try:
        rows = await segments.segment_members(session, segment_id, after, limit + 1)
    except SegmentNotFound as exc:
        raise _not_found(exc) from exc
    page = rows[:limit]
    return {
        "segment_id": segment_id,
        "items": [{"customer_id": row.customer_id, "since": format_time(row.since)} for row in page],
        "next_cursor": encode_cursor(page[-1].customer_id) if len(rows) > limit else None,
    }
