"""HTTP API of profile: who is this customer and what has happened with them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.profile.adapters.tables import customers

router = APIRouter(prefix="/v1", tags=["customers"])


@router.get("/customers/{customer_id}", summary="A customer's profile")
async def get_customer(
    customer_id: str,
    session: AsyncSession = Depends(db_session),
    _: Principal = Depends(require_scope("customers:read")),
) -> dict[str, Any]:
    state = await session.scalar(select(customers.c.state).where(customers.c.customer_id == customer_id))
    if state is None:
        raise Problem(404, "Not Found", f"no customer '{customer_id}'")
    return {"customer_id": customer_id, **state}
