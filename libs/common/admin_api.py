"""The key and audit administration every service answers: `/v1/api-keys`, `/v1/audit`, `/v1/auth/whoami`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from libs.common import apikeys, audit
from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.settings import Scope

router = APIRouter(prefix="/v1", tags=["administration"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
AnyKey = Annotated[Principal, Depends(require_scope(None))]


class KeyRequest(BaseModel):
    source: str = Field(min_length=1, max_length=200, description="The calling system; ce_source of its events.")
    scopes: list[Scope] = Field(min_length=1)
    expires_at: datetime | None = Field(default=None, description="RFC 3339 with a time zone; none: never.")
    rate_limit_per_s: float | None = Field(default=None, gt=0)


class RotateRequest(BaseModel):
    grace_s: float = Field(default=0, ge=0, le=30 * 86400, description="How long the old key keeps working.")


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": "invalid"}


def _sessions(request: Request) -> Any:
    return request.app.state.runtime.sessions


def _key_json(info: apikeys.KeyInfo) -> dict[str, Any]:
    return {
        "key_id": info.key_id,
        "source": info.source,
        "scopes": info.scopes,
        "rate_limit_per_s": info.rate_limit_per_s,
        "expires_at": info.expires_at.isoformat() if info.expires_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
        "replaced_by": info.replaced_by,
        "created_by": info.created_by,
        "created_at": info.created_at.isoformat(),
    }


def _issued_json(issued: apikeys.IssuedKey) -> dict[str, Any]:
    return {**_key_json(issued.info), "token": issued.token}


@router.post("/api-keys", status_code=201, summary="Create an API key (its token is shown only in this answer)")
async def create_key(request: Request, body: KeyRequest, principal: Admin) -> dict[str, Any]:
    if body.expires_at is not None and body.expires_at.tzinfo is None:
        raise Problem(
            422,
            "Unprocessable Content",
            "expires_at needs a time zone",
            errors=[_error("expires_at", "expires_at needs a time zone")],
        )
    async with _sessions(request)() as session, session.begin():
        issued = await apikeys.create_key(
            session,
            source=body.source,
            scopes=body.scopes,
            created_by=principal.key_id,
            expires_at=body.expires_at,
            rate_limit_per_s=body.rate_limit_per_s,
        )
        await audit.record(
            request,
            principal,
            audit.KEY_CREATED,
            target=issued.info.key_id,
            details={"scopes": issued.info.scopes},
            session=session,
        )
    return _issued_json(issued)


@router.get("/api-keys", summary="The API keys (never their secrets)")
async def list_keys(request: Request, _: Admin, include_revoked: bool = False) -> dict[str, Any]:
    async with _sessions(request)() as session:
        keys = await apikeys.list_keys(session, include_revoked=include_revoked)
    return {"items": [_key_json(info) for info in keys]}


@router.post("/api-keys/{key_id}/rotate", status_code=201, summary="Replace a key by a new one with the same rights")
async def rotate_key(
    request: Request, key_id: str, principal: Admin, body: RotateRequest | None = None
) -> dict[str, Any]:
    grace = timedelta(seconds=body.grace_s if body else 0)
    async with _sessions(request)() as session, session.begin():
        issued = await apikeys.rotate_key(session, key_id, created_by=principal.key_id, grace=grace)
        if issued is None:
            raise Problem(
                404, "Not Found", f"no live API key {key_id}", errors=[_error("key_id", f"no live API key {key_id}")]
            )
        await audit.record(
            request,
            principal,
            audit.KEY_ROTATED,
            target=key_id,
            details={"replaced_by": issued.info.key_id, "grace_s": grace.total_seconds()},
            session=session,
        )
    return _issued_json(issued)


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke a key: every service refuses it within seconds")
async def revoke_key(request: Request, key_id: str, principal: Admin) -> Response:
    async with _sessions(request)() as session, session.begin():
        info = await apikeys.revoke_key(session, key_id)
        if info is None:
            raise Problem(404, "Not Found", f"no API key {key_id}", errors=[_error("key_id", f"no API key {key_id}")])
        await audit.record(request, principal, audit.KEY_REVOKED, target=key_id, session=session)
    return Response(status_code=204)


@router.get("/auth/whoami", summary="The key presented: its id, source and scopes")
async def whoami(principal: AnyKey) -> dict[str, Any]:
    return {"key_id": principal.key_id, "source": principal.source, "scopes": sorted(principal.scopes)}


@router.get("/audit", summary="The audit trail, oldest first")
async def get_audit(
    request: Request,
    _: Admin,
    customer_id: str | None = None,
    actor: Annotated[str | None, Query(description="A key id or a source name")] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    for name, value in (("from", since), ("to", until)):
        if value is not None and value.tzinfo is None:
            raise Problem(
                422,
                "Unprocessable Content",
                f"{name} needs a time zone",
                errors=[_error(name, f"{name} needs a time zone")],
            )
    async with _sessions(request)() as session:
        entries = await audit.query(
            session, customer_id=customer_id, actor=actor, since=since, until=until, limit=limit
        )
    return {
        "items": [
            {
                "id": e.id,
                "occurred_at": e.occurred_at.isoformat(),
                "service": e.service,
                "key_id": e.key_id,
                "source": e.source,
                "address": e.address,
                "action": e.action,
                "customer_id": e.customer_id,
                "target": e.target,
                "details": e.details,
            }
            for e in entries
        ]
    }
