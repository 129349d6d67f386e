"""`GET /v1/customers/{customer_id}/export` (admin): the data subject access export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import audit
from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session, runtime_of
from services.profile.handlers.export import export_customer
from services.profile.handlers.sealing import Vault

router = APIRouter(prefix="/v1", tags=["customers"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
Session = Annotated[AsyncSession, Depends(db_session)]


@router.get(
    "/customers/{customer_id}/export",
    summary="Everything every service holds about a customer, as one document (data subject access)",
)
async def export(customer_id: str, request: Request, session: Session, principal: Admin) -> dict[str, Any]:
    await audit.record(request, principal, audit.CUSTOMER_EXPORTED, customer_id=customer_id)
    document = await export_customer(
        session,
        Vault(runtime_of(request).personal),
        request.app.state.peers,
        customer_id,
        request.headers.get("authorization", ""),
    )
    if document is None:
        raise Problem(404, "Not Found", f"no customer '{customer_id}'", customer_id=customer_id)
    return document
