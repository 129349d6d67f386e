"""HTTP API of profile: who is this customer and what has happened with them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import audit
from libs.common.auth import Principal, require_scope
from libs.common.clock import as_of, wall_clock
from libs.common.envelope import format_time
from libs.common.problems import Problem
from libs.common.runtime import db_session, runtime_of
from services.profile.adapters import repository
from services.profile.adapters.tables import SCHEMA
from services.profile.domain import ProfileState, customer_view, normalise_email, normalise_phone, set_tags
from services.profile.entrypoints.segments import SEGMENT_DEFINITIONS
from services.profile.handlers import erasure
from services.profile.handlers.profiles import Cause, Working, save_and_announce
from services.profile.handlers.timeline import InvalidCursor, decode_cursor, encode_cursor

Session = Annotated[AsyncSession, Depends(db_session)]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]
Writer = Annotated[Principal, Depends(require_scope("customers:write"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]

router = APIRouter(prefix="/v1", tags=["customers"])
S = SCHEMA

CustomerId = Annotated[str, Path(min_length=1, max_length=128)]
Tag = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def _clock(request: Request, newest: datetime | None) -> datetime:
    return as_of(request.app.state.settings.clock_mode, newest)


async def _survivor(session: AsyncSession, customer_id: str) -> str:
    # Merges collapse alias chains, so one hop always reaches the profile that holds the data now.
    return (await repository.survivors_of(session, [customer_id])).get(customer_id, customer_id)


def _not_found(customer_id: str) -> Problem:
    return Problem(404, "Not Found", f"no customer '{customer_id}'", customer_id=customer_id)


def _bad_cursor(exc: InvalidCursor) -> Problem:
    return Problem(
        422, "Invalid request", str(exc), errors=[{"field": "cursor", "message": str(exc), "code": "invalid_cursor"}]
    )


@router.get("/customers/{customer_id}", summary="A customer's 360-degree profile")
async def get_customer(
    customer_id: CustomerId,
    request: Request,
    session: Session,
    principal: Reader,
) -> dict[str, Any]:
    """Follows merges: a merged id answers with the survivor's profile and `merged_into` set."""
    await audit.record(request, principal, audit.CUSTOMER_VIEWED, customer_id=customer_id)
    survivor = await _survivor(session, customer_id)
    raw = await session.scalar(text(f"SELECT state::text FROM {S}.customers WHERE customer_id = :id"), {"id": survivor})
    if raw is None:
        raise _not_found(customer_id)
    state = ProfileState.model_validate_json(raw)
    in_segments = (await repository.memberships(session, [survivor])).get(survivor, set())
    return customer_view(state, _clock(request, state.last_seen), segments=in_segments, requested_id=customer_id)


@router.get("/customers/{customer_id}/timeline", summary="A customer's events, newest first")
async def get_timeline(
    customer_id: CustomerId,
    session: Session,
    _: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    survivor = await _survivor(session, customer_id)
    params: dict[str, Any] = {"id": survivor, "limit": limit + 1}
    after = ""
    if cursor:
        try:
            params["time"], params["event_id"] = decode_cursor(cursor, (datetime, str))
        except InvalidCursor as exc:
            raise _bad_cursor(exc) from exc
        after = "AND (event_time, event_id) < (:time, :event_id)"
    rows = (
        await session.execute(
            text(
                f"SELECT event_time, event_id, type, summary FROM {S}.timeline WHERE customer_id = :id {after} "
                "ORDER BY event_time DESC, event_id DESC LIMIT :limit"
            ),
            params,
        )
    ).all()
    if not rows and not cursor:
        exists = await session.scalar(text(f"SELECT 1 FROM {S}.customers WHERE customer_id = :id"), {"id": survivor})
        if not exists:
            raise _not_found(customer_id)
    page = rows[:limit]
    items = [
        {"id": row.event_id, "type": row.type, "time": format_time(row.event_time), "summary": row.summary}
        for row in page
    ]
    next_cursor = encode_cursor(page[-1].event_time, page[-1].event_id) if len(rows) > limit else None
    return {"customer_id": survivor, "items": items, "next_cursor": next_cursor}


def _summary(customer_id: str, raw: str) -> dict[str, Any]:
    """A search hit: enough to pick the right customer without loading the full view."""
    state = orjson.loads(raw)
    orders = state.get("orders", {})
    return {
        "customer_id": customer_id,
        "name": state.get("attributes", {}).get("name"),
        "email": state.get("identities", {}).get("email"),
        "phone": state.get("identities", {}).get("phone"),
        "region": state.get("attributes", {}).get("region"),
        "tags": state.get("tags", []),
        "order_count": orders.get("count", 0),
        "total_spend": float(orders.get("total_spend", 0)),
        "last_seen": state.get("last_seen"),
    }


@router.get("/customers", summary="Search customers by email, phone, tag or segment")
async def search_customers(
    request: Request,
    session: Session,
    principal: Reader,
    email: Annotated[str | None, Query(max_length=254)] = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    segment: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Filters combine with AND; at least one is required (the whole base is not a page to scroll)."""
    # Which criteria were used, never their values: an email searched for is personal data.
    criteria = [
        name for name, value in (("email", email), ("phone", phone), ("tag", tag), ("segment", segment)) if value
    ]
    await audit.record(request, principal, audit.CUSTOMER_SEARCHED, details={"criteria": criteria})
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit + 1}
    if email is not None:
        where.append("c.email = :email")
        params["email"] = normalise_email(email)
    if phone is not None:
        where.append("c.phone = :phone")
        params["phone"] = normalise_phone(phone)
    if tag is not None:
        where.append("c.tags @> ARRAY[CAST(:tag AS text)]")
        params["tag"] = tag
    if segment is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM {S}.segment_members m WHERE m.segment_id = :segment "
            "AND m.customer_id = c.customer_id)"
        )
        params["segment"] = segment
    if not where:
        message = "give at least one of email, phone, tag or segment"
        raise Problem(
            422, "Invalid request", message, errors=[{"field": "query", "message": message, "code": "missing"}]
        )
    if cursor:
        try:
            (params["after"],) = decode_cursor(cursor, (str,))
        except InvalidCursor as exc:
            raise _bad_cursor(exc) from exc
        where.append("c.customer_id > :after")
    rows = (
        await session.execute(
            text(
                f"SELECT c.customer_id, c.state::text AS state FROM {S}.customers c WHERE {' AND '.join(where)} "
                "ORDER BY c.customer_id LIMIT :limit"
            ),
            params,
        )
    ).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].customer_id) if len(rows) > limit else None
    return {"items": [_summary(row.customer_id, row.state) for row in page], "next_cursor": next_cursor}


async def _edit_tags(
    request: Request, session: AsyncSession, customer_id: str, add: list[str], remove: list[str]
) -> dict[str, Any]:
    runtime = runtime_of(request)
    async with session.begin():
        await repository.close_erasure_gate(session)  # first: a batch in flight commits before we delete
        survivor = await _survivor(session, customer_id)
        stored = await repository.lock_profiles(session, [survivor])
        if not stored:
            raise _not_found(customer_id)
        document = stored[0].state_json
        assert document is not None  # no held revs were passed, so every row carries its document
        working = Working.parse(document)
        working.state, changed = set_tags(working.state, add=add, remove=remove)
        if changed:
            now = datetime.now(UTC)
            working.touch(Cause(f"tags:{uuid.uuid4()}", "tags.changed", now))
            await save_and_announce(
                session,
                runtime.outbox,
                [working],
                as_of=_clock(request, working.state.last_seen),
                segments=await SEGMENT_DEFINITIONS.load(session),
            )
    return {"customer_id": survivor, "tags": working.state.tags}


@router.put("/customers/{customer_id}/tags/{tag}", summary="Add a tag", tags=["customers"])
async def add_tag(
    customer_id: CustomerId,
    tag: Tag,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    return await _edit_tags(request, session, customer_id, add=[tag], remove=[])


@router.delete("/customers/{customer_id}/tags/{tag}", summary="Remove a tag", tags=["customers"])
async def remove_tag(
    customer_id: CustomerId,
    tag: Tag,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    return await _edit_tags(request, session, customer_id, add=[], remove=[tag])


@router.delete("/customers/{customer_id}", summary="Erase a customer (right to be forgotten)")
async def erase_customer(
    customer_id: CustomerId,
    request: Request,
    session: Session,
    principal: Admin,
) -> dict[str, Any]:
    """Erases the customer (`handlers.erasure.erase_customer`) and answers what was erased."""
    now = wall_clock()
    async with session.begin():
        erased = await erasure.erase_customer(session, runtime_of(request).outbox, customer_id, now)
        await audit.record(request, principal, audit.CUSTOMER_ERASED, customer_id=customer_id, session=session)
    return {
        "customer_id": erased.customer_id,
        "erased_ids": erased.erased_ids,
        "profile_found": erased.profile_found,
        "erased_at": format_time(now),
    }
