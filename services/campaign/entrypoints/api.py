"""HTTP API of campaign: campaign CRUD and report, a customer's actions and loyalty, coupon lookup."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.campaign.adapters import repository as repo
from services.campaign.adapters.reporting import variant_counts
from services.campaign.adapters.tables import actions, aliases, campaigns, coupons, loyalty_accounts
from services.campaign.domain.ab import ab_report_from_counts
from services.campaign.domain.coupons import normalize_code
from services.campaign.domain.definitions import CampaignDefinition
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.scheduler import schedule_campaign_for_everyone

router = APIRouter(prefix="/v1")
_JOINED_IDS = "An id that profile merged into, or recognised as, another customer answers for that customer."
Session = Annotated[AsyncSession, Depends(db_session)]
# Marketing reads and writes campaigns with one scope; customer views use the CRM's read scope.
Writer = Annotated[Principal, Depends(require_scope("campaigns:write"))]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]


def deps_of(request: Request) -> CampaignDeps:
    deps: CampaignDeps = request.app.state.campaign
    return deps


def _campaign_body(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "builtin": row.builtin,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        **row.definition,
    }


async def _campaign_row(session: AsyncSession, campaign_id: str) -> Any:
    row = (await session.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()
    if row is None:
        raise Problem(404, "Not Found", f"no campaign {campaign_id!r}")
    return row


async def _after_save(deps: CampaignDeps, session: AsyncSession, campaign_id: str) -> None:
    stored = await repo.load_campaign(session, campaign_id)
    if stored is not None and stored.definition.status == "active":
        await schedule_campaign_for_everyone(deps, session, stored)


@router.post("/campaigns", status_code=201, tags=["campaigns"], summary="Create a campaign")
async def create_campaign(
    body: CampaignDefinition,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    campaign_id = f"cmp-{uuid.uuid4().hex[:16]}"
    async with session.begin():
        await session.execute(
            campaigns.insert().values(
                id=campaign_id, name=body.name, definition=body.model_dump(mode="json"), status=body.status
            )
        )
        await _after_save(deps_of(request), session, campaign_id)
        return _campaign_body(await _campaign_row(session, campaign_id))


@router.get("/campaigns", tags=["campaigns"], summary="List campaigns")
async def list_campaigns(
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    rows = (await session.execute(select(campaigns).order_by(campaigns.c.created_at, campaigns.c.id))).all()
    return {"items": [_campaign_body(row) for row in rows]}


@router.get("/campaigns/{campaign_id}", tags=["campaigns"], summary="One campaign")
async def get_campaign(
    campaign_id: str,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    return _campaign_body(await _campaign_row(session, campaign_id))


@router.put("/campaigns/{campaign_id}", tags=["campaigns"], summary="Replace a campaign's definition")
async def replace_campaign(
    campaign_id: str,
    body: CampaignDefinition,
    request: Request,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    async with session.begin():
        await _campaign_row(session, campaign_id)
        await session.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(name=body.name, definition=body.model_dump(mode="json"), status=body.status, updated_at=func.now())
        )
        await _after_save(deps_of(request), session, campaign_id)
        return _campaign_body(await _campaign_row(session, campaign_id))


@router.delete("/campaigns/{campaign_id}", status_code=204, tags=["campaigns"], summary="Delete a campaign")
async def delete_campaign(
    campaign_id: str,
    session: Session,
    _: Writer,
) -> Response:
    # Decided actions stay (they were decided while the campaign existed); deferred ones get skipped.
    async with session.begin():
        await _campaign_row(session, campaign_id)
        await session.execute(delete(campaigns).where(campaigns.c.id == campaign_id))
    return Response(status_code=204)


@router.get("/campaigns/{campaign_id}/report", tags=["campaigns"], summary="A/B report with uplift vs holdout")
async def campaign_report(
    campaign_id: str,
    session: Session,
    _: Writer,
) -> dict[str, Any]:
    row = await _campaign_row(session, campaign_id)
    definition = CampaignDefinition.model_validate(row.definition)
    groups, redeemed = await variant_counts(session, campaign_id, definition.conversion_window_days)
    return {
        "campaign_id": campaign_id,
        "conversion_window_days": definition.conversion_window_days,
        "variants": [
            {**asdict(report), "coupons_redeemed": redeemed.get(report.variant, 0)}
            for report in ab_report_from_counts(groups)
        ],
    }


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
    customer_id = await aliases.resolve(session, customer_id)
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
                "channel": row.channel,
                "variant": row.variant,
                "status": row.status,
                "reason": row.reason,
                "attempts": row.attempts,
                "created_at": row.created_at.isoformat(),
                "sent_at": row.sent_at.isoformat() if row.sent_at else None,
                "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
                "trigger": row.trigger,
                "details": {key: value for key, value in row.payload.items() if key != "action"},
            }
            for row in rows
        ],
    }


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
    customer_id = await aliases.resolve(session, customer_id)
    row = (await session.execute(select(loyalty_accounts).where(loyalty_accounts.c.customer_id == customer_id))).first()
    if row is None:
        return {"customer_id": customer_id, "points": 0, "level": "normal", "rolling_12m_spend": 0.0}
    return {
        "customer_id": customer_id,
        "points": row.points,
        "level": row.level,
        "rolling_12m_spend": float(row.rolling_spend),
        "updated_at": row.updated_at.isoformat(),
    }


@router.get("/coupons/{code}", tags=["coupons"], summary="Look a coupon up by its code")
async def coupon(
    code: str,
    session: Session,
    _: Reader,
) -> dict[str, Any]:
    row = (await session.execute(select(coupons).where(coupons.c.code == normalize_code(code)))).first()
    if row is None:
        raise Problem(404, "Not Found", "no such coupon")
    return {
        "code": row.code,
        "customer_id": row.customer_id,
        "campaign_id": row.campaign_id,
        "variant": row.variant,
        "discount_type": row.discount_type,
        "value": float(row.value),
        "currency": row.currency,
        "issued_at": row.issued_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "redeemed": row.redeemed_at is not None,
        "redeemed_at": row.redeemed_at.isoformat() if row.redeemed_at else None,
        "redeemed_order_id": row.redeemed_order_id,
    }
