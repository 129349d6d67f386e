"""HTTP API of feedback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.feedback.adapters.tables import tickets

router = APIRouter(prefix="/v1", tags=["tickets"])


@router.get("/tickets/{ticket_id}", summary="A ticket and its timeline")
async def get_ticket(
    ticket_id: str,
    session: AsyncSession = Depends(db_session),
    _: Principal = Depends(require_scope("customers:read")),
) -> dict[str, Any]:
    row = (await session.execute(select(tickets).where(tickets.c.ticket_id == ticket_id))).first()
    if row is None:
        raise Problem(404, "Not Found", f"no ticket '{ticket_id}'")
    return {
        "ticket_id": row.ticket_id,
        "customer_id": row.customer_id,
        "status": row.status,
        "priority": row.priority,
        "category": row.category,
        "opened_at": row.opened_at.isoformat(),
        "timeline": row.timeline,
    }
