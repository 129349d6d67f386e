"""Segment CRUD and member lists. Conditions use the JSON language of `services.profile.domain.segments`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.clock import as_of
from libs.common.envelope import format_time
from libs.common.problems import Problem
from libs.common.runtime import db_session, runtime_of
from services.profile.adapters import profiles
from services.profile.adapters.profiles import SegmentRow
from services.profile.adapters.tables import SCHEMA
from services.profile.domain import Condition, InvalidCondition, parse_condition
from services.profile.handlers.profiles import Cause, SegmentDefinitions
from services.profile.handlers.sealing import Vault
from services.profile.handlers.segments import Recomputed, recompute_segment
from services.profile.handlers.timeline import InvalidCursor, decode_cursor, encode_cursor

Session = Annotated[AsyncSession, Depends(db_session)]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]
Writer = Annotated[Principal, Depends(require_scope("customers:write"))]

router = APIRouter(prefix="/v1", tags=["segments"])
S = SCHEMA
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


async def _get(session: AsyncSession, segment_id: str, *, lock: bool = False) -> SegmentRow:
    row = (
        await session.execute(
            text(
                f"SELECT id, name, condition, version, created_at, updated_at FROM {S}.segments WHERE id = :id"
                + (" FOR UPDATE" if lock else "")
            ),
            {"id": segment_id},
        )
    ).first()
    if row is None:
        raise Problem(404, "Not Found", f"no segment '{segment_id}'")
    return SegmentRow(*row)


def _clock(request: Request) -> Any:
    mode = request.app.state.settings.clock_mode
    return lambda newest: as_of(mode, newest)


async def _recompute(
    request: Request, session: AsyncSession, row: SegmentRow, condition: Condition | None
) -> Recomputed:
    cause = Cause(f"segment:{row.id}:v{row.version}", "segment.changed", datetime.now(UTC))
    runtime = runtime_of(request)
    return await recompute_segment(
        session, runtime.outbox, Vault(runtime.personal), row.id, condition, cause, _clock(request)
    )


@router.post("/segments", status_code=201, summary="Define a segment; membership is computed at once")
async def create_segment(
    body: SegmentIn,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    condition = _parse(body.condition)
    segment_id = body.id or f"seg-{uuid.uuid4().hex[:12]}"
    async with session.begin():
        inserted = (
            await session.execute(
                text(
                    f"INSERT INTO {S}.segments (id, name, condition) VALUES (:id, :name, CAST(:condition AS jsonb)) "
                    "ON CONFLICT (id) DO NOTHING RETURNING id"
                ),
                {"id": segment_id, "name": body.name, "condition": _json(body.condition)},
            )
        ).first()
        if inserted is None:
            raise Problem(409, "Conflict", f"segment '{segment_id}' exists")
        row = await _get(session, segment_id)
        recomputed = await _recompute(request, session, row, condition)
    return _body(row, recomputed)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@router.get("/segments", summary="All segments")
async def list_segments(
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    return {"items": [_body(row) for row in await profiles.all_segments(session)]}


@router.get("/segments/{segment_id}", summary="One segment")
async def get_segment(
    segment_id: SegmentId,
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    return _body(await _get(session, segment_id))


@router.put("/segments/{segment_id}", summary="Change a segment; membership is recomputed at once")
async def update_segment(
    segment_id: SegmentId,
    body: SegmentUpdate,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    condition = _parse(body.condition) if body.condition is not None else None
    async with session.begin():
        current = await _get(session, segment_id, lock=True)
        await session.execute(
            text(
                f"UPDATE {S}.segments SET name = COALESCE(:name, name), "
                "condition = COALESCE(CAST(:condition AS jsonb), condition), version = version + 1, "
                "updated_at = now() WHERE id = :id"
            ),
            {
                "id": segment_id,
                "name": body.name,
                "condition": _json(body.condition) if body.condition is not None else None,
            },
        )
        row = await _get(session, segment_id)
        recomputed = None
        if condition is not None and body.condition != current.condition:
            recomputed = await _recompute(request, session, row, condition)
    return _body(row, recomputed)


@router.delete("/segments/{segment_id}", summary="Delete a segment; its members leave it")
async def delete_segment(
    segment_id: SegmentId,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    async with session.begin():
        row = await _get(session, segment_id, lock=True)
        recomputed = await _recompute(request, session, row, None)
        await session.execute(text(f"DELETE FROM {S}.segments WHERE id = :id"), {"id": segment_id})
    return {"id": segment_id, "deleted": True, "left": recomputed.left}


@router.get("/segments/{segment_id}/members", summary="Customers in a segment, paged by customer id")
async def segment_members(
    segment_id: SegmentId,
    session: Session,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> dict[str, Any]:
    await _get(session, segment_id)
    params: dict[str, Any] = {"id": segment_id, "limit": limit + 1, "after": ""}
    if cursor:
        try:
            (params["after"],) = decode_cursor(cursor, (str,))
        except InvalidCursor as exc:
            raise Problem(
                422, "Invalid request", str(exc), errors=[{"field": "cursor", "message": str(exc), "code": "invalid"}]
            ) from exc
    rows = (
        await session.execute(
            text(
                f"SELECT customer_id, since FROM {S}.segment_members WHERE segment_id = :id AND customer_id > :after "
                "ORDER BY customer_id LIMIT :limit"
            ),
            params,
        )
    ).all()
    page = rows[:limit]
    return {
        "segment_id": segment_id,
        "items": [{"customer_id": row.customer_id, "since": format_time(row.since)} for row in page],
        "next_cursor": encode_cursor(page[-1].customer_id) if len(rows) > limit else None,
    }
