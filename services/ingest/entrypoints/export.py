"""`GET /v1/customers/{customer_id}/events` (admin): the event log's part of a customer's data export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from libs.common.auth import Principal, require_scope
from services.ingest.entrypoints.common import deps_of
from services.ingest.handlers.export import customer_events

router = APIRouter(prefix="/v1", tags=["export"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]


@router.get("/customers/{customer_id}/events", summary="Every event the log holds of a customer, opened")
async def get_customer_events(customer_id: str, request: Request, _: Admin) -> dict[str, Any]:
    return await customer_events(deps_of(request), customer_id)
