"""HTTP API of campaign."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.runtime import db_session
from services.campaign.adapters.tables import actions

router = APIRouter(prefix="/v1", tags=["actions"])


@router.get("/customers/{customer_id}/actions", summary="Coupons, alerts and messages for a customer")
async def list_actions(
    customer_id: str,
    session: AsyncSession = Depends(db_session),
    _: Principal = Depends(require_scope("customers:read")),
) -> dict[str, Any]:
    rows = (
        await session.execute(select(actions).where(actions.c.customer_id == customer_id).order_by(actions.c.id))
    ).all()
    return {
        "customer_id": customer_id,
        "items": [
            {
                "id": row.id,
                "campaign_id": row.campaign_id,
                "kind": row.kind,
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "details": row.payload,
            }
            for row in rows
        ],
    }
