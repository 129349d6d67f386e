"""HTTP API of campaign: campaign CRUD and report, a customer's actions and loyalty, coupon lookup."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import audit
from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.campaign.domain.definitions import CampaignDefinition
from services.campaign.handlers import admin
from services.campaign.handlers.deps import CampaignDeps

router = APIRouter(prefix="/v1")
_JOINED_IDS = "An id that profile merged into, or recognised as, another customer answers for that customer."
Session = Annotated[AsyncSession, Depends(db_session)]
# Marketing reads and writes campaigns with one scope; customer views use the CRM's read scope.
Writer = Annotated[Principal, Depends(require_scope("campaigns:write"))]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]


def deps_of(request: Request) -> CampaignDeps:
    deps: CampaignDeps = request.app.state.campaign
    return deps


T = TypeVar("T")


async def _found(answer: Awaitable[T]) -> T:
    try:
        return await answer
    except admin.NotFound as exc:
        raise Problem(404, "Not Found", str(exc)) from exc


async def _audit(request: Request, principal: Principal, campaign_id: str, change: str) -> None:
    await audit.record(request, principal, audit.CAMPAIGN_CHANGED, target=campaign_id, details={"change": change})


@router.post("/campaigns", status_code=201, tags=["campaigns"], summary="Create a campaign")
async def create_campaign(
    body: CampaignDefinition,
    request: Request,
    session: Session,
    principal: Writer,
) -> dict[str, Any]:
    created = await admin.create_campaign(deps_of(request), session, body)
    await _audit(request, principal, str(created["id"]), "created")
    return created


@router.get("/campaigns", tags=["campaigns"], summary="List campaigns")
async def list_campaigns(
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    return {"items": await admin.list_campaigns(session)}


@router.get("/campaigns/{campaign_id}", tags=["campaigns"], summary="One campaign")
async def get_campaign(
    campaign_id: str,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    return await _found(admin.get_campaign(session, campaign_id))


@router.put("/campaigns/{campaign_id}", tags=["campaigns"], summary="Replace a campaign's definition")
async def replace_campaign(
    campaign_id: str,
    body: CampaignDefinition,
    request: Request,
    session: Session,
    principal: Writer,
) -> dict[str, Any]:
    replaced = await _found(admin.replace_campaign(deps_of(request), session, campaign_id, body))
    await _audit(request, principal, campaign_id, "replaced")
    return replaced


@router.delete("/campaigns/{campaign_id}", status_code=204, tags=["campaigns"], summary="Delete a campaign")
async def delete_campaign(
    campaign_id: str,
    request: Request,
    session: Session,
    principal: Writer,
) -> Response:
    await _found(admin.delete_campaign(session, campaign_id))
    await _audit(request, principal, campaign_id, "deleted")
    return Response(status_code=204)


@router.get("/campaigns/{campaign_id}/report", tags=["campaigns"], summary="A/B report with uplift vs holdout")
async def campaign_report(
    campaign_id: str,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    return await _found(admin.campaign_report(session, campaign_id))


@router.get(
    "/customers/{customer_id}/actions",
    tags=["customers"],
    summary="Coupons, alerts and messages",
    description=_JOINED_IDS,
)
async def list_actions(
    customer_id: str,
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    return await admin.customer_actions(session, customer_id)


@router.get(
    "/customers/{customer_id}/loyalty",
    tags=["customers"],
    summary="Points balance and level",
    description=_JOINED_IDS,
)
async def loyalty(
    customer_id: str,
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    return await admin.customer_loyalty(session, customer_id)


@router.get("/coupons/{code}", tags=["coupons"], summary="Look a coupon up by its code")
async def coupon(
    code: str,
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    return await _found(admin.coupon(session, code))
