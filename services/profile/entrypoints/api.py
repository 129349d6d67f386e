"""HTTP API of profile: who is this customer and what has happened with them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import audit
from libs.common.auth import Principal, require_scope
from libs.common.clock import wall_clock
from libs.common.envelope import format_time
from libs.common.problems import Problem
from libs.common.runtime import db_session, runtime_of
from services.profile.entrypoints.segments import SEGMENT_DEFINITIONS
from services.profile.handlers import customers, erasure
from services.profile.handlers.sealing import Vault
from services.profile.handlers.timeline import InvalidCursor, decode_cursor, encode_cursor

Session = Annotated[AsyncSession, Depends(db_session)]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]
Writer = Annotated[Principal, Depends(require_scope("customers:write"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]

router = APIRouter(prefix="/v1", tags=["customers"])

CustomerId = Annotated[str, Path(min_length=1, max_length=128)]
Tag = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page")]


def vault_of(request: Request) -> Vault:
    return Vault(runtime_of(request).personal)


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
    try:
        return await customers.customer(session, vault_of(request), customer_id, request.app.state.settings.clock_mode)
    except customers.NoSuchCustomer as exc:
        raise _not_found(customer_id) from exc


@router.get("/customers/{customer_id}/timeline", summary="A customer's events, newest first")
async def get_timeline(
    customer_id: CustomerId,
    session: Session,
    _: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    before: tuple[datetime, str] | None = None
    if cursor:
        try:
            at, event_id = decode_cursor(cursor, (datetime, str))
            before = (at, event_id)
        except InvalidCursor as exc:
            raise _bad_cursor(exc) from exc
    try:
        page = await customers.timeline(session, customer_id, before, limit)
    except customers.NoSuchCustomer as exc:
        raise _not_found(customer_id) from exc
    items = [
        {"id": row.event_id, "type": row.type, "time": format_time(row.event_time), "summary": row.summary}
        for row in page.rows
    ]
    next_cursor = None if page.next_key is None else encode_cursor(*page.next_key)
    return {"customer_id": page.customer_id, "items": items, "next_cursor": next_cursor}


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
    if email is None and phone is None and tag is None and segment is None:
        message = "give at least one of email, phone, tag or segment"
        raise Problem(
            422, "Invalid request", message, errors=[{"field": "query", "message": message, "code": "missing"}]
        )
    after: str | None = None
    if cursor:
        try:
            (after,) = decode_cursor(cursor, (str,))
        except InvalidCursor as exc:
            raise _bad_cursor(exc) from exc
    items, last = await customers.search(
        session, vault_of(request), email=email, phone=phone, tag=tag, segment=segment, after=after, limit=limit
    )
    return {"items": items, "next_cursor": None if last is None else encode_cursor(last)}


async def _edit_tags(
    request: Request, session: AsyncSession, customer_id: str, add: list[str], remove: list[str]
) -> dict[str, Any]:
    try:
        return await customers.edit_tags(
            session,
            runtime_of(request).outbox,
            vault_of(request),
            SEGMENT_DEFINITIONS,
            customer_id,
            request.app.state.settings.clock_mode,
            add=add,
            remove=remove,
        )
    except customers.NoSuchCustomer as exc:
        raise _not_found(customer_id) from exc


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
