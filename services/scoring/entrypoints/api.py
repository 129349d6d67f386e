"""HTTP API of scoring."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.scoring.adapters.tables import scores

router = APIRouter(prefix="/v1", tags=["scores"])


@router.get("/customers/{customer_id}/score", summary="A customer's current score")
async def get_score(
    customer_id: str,
    session: AsyncSession = Depends(db_session),
    _: Principal = Depends(require_scope("customers:read")),
) -> dict[str, Any]:
    row = (await session.execute(select(scores).where(scores.c.customer_id == customer_id))).first()
    if row is None:
        raise Problem(404, "Not Found", f"no score for customer '{customer_id}'")
    return {"customer_id": customer_id, **row.score, "updated_at": row.updated_at.isoformat()}
