"""Use cases of campaign's HTTP API: campaign definitions and their A/B report, a customer's actions and loyalty,
coupon lookup. Each answers the JSON view of what it read."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters import admin, campaigns
from services.campaign.adapters.reporting import variant_counts
from services.campaign.adapters.tables import aliases
from services.campaign.domain.ab import ab_report_from_counts
from services.campaign.domain.coupons import normalize_code
from services.campaign.domain.definitions import CampaignDefinition
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.scheduler import schedule_campaign_for_everyone


class NotFound(Exception):
    pass


def _campaign_body(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "builtin": row.builtin,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        **row.definition,
    }


async def _campaign_row(session: AsyncSession, campaign_id: str) -> Any:
    row = await admin.campaign(session, campaign_id)
    if row is None:
        raise NotFound(f"no campaign {campaign_id!r}")
    return row


async def _after_save(deps: CampaignDeps, session: AsyncSession, campaign_id: str) -> dict[str, Any]:
    stored = await campaigns.load_campaign(session, campaign_id)
    if stored is not None and stored.definition.status == "active":
        await schedule_campaign_for_everyone(deps, session, stored)
    return _campaign_body(await _campaign_row(session, campaign_id))


async def create_campaign(deps: CampaignDeps, session: AsyncSession, body: CampaignDefinition) -> dict[str, Any]:
    campaign_id = f"cmp-{uuid.uuid4().hex[:16]}"
    async with session.begin():
        await admin.insert_campaign(session, campaign_id, body.name, body.model_dump(mode="json"))
        return await _after_save(deps, session, campaign_id)


async def list_campaigns(session: AsyncSession) -> list[dict[str, Any]]:
    return [_campaign_body(row) for row in await admin.all_campaigns(session)]


async def get_campaign(session: AsyncSession, campaign_id: str) -> dict[str, Any]:
    return _campaign_body(await _campaign_row(session, campaign_id))


async def replace_campaign(
    deps: CampaignDeps, session: AsyncSession, campaign_id: str, body: CampaignDefinition
) -> dict[str, Any]:
    async with session.begin():
        await _campaign_row(session, campaign_id)
        await admin.update_campaign(session, campaign_id, body.name, body.model_dump(mode="json"))
        return await _after_save(deps, session, campaign_id)


async def delete_campaign(session: AsyncSession, campaign_id: str) -> None:
    # Decided actions stay (they were decided while the campaign existed); deferred ones get skipped.
    async with session.begin():
        await _campaign_row(session, campaign_id)
        await admin.delete_campaign(session, campaign_id)


async def campaign_report(session: AsyncSession, campaign_id: str) -> dict[str, Any]:
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


def _action_view(row: Any) -> dict[str, Any]:
    return {
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


async def customer_actions(session: AsyncSession, customer_id: str) -> dict[str, Any]:
    customer_id = await aliases.resolve(session, customer_id)
    rows = await admin.actions_of(session, customer_id)
    return {"customer_id": customer_id, "items": [_action_view(row) for row in rows]}


async def customer_loyalty(session: AsyncSession, customer_id: str) -> dict[str, Any]:
    customer_id = await aliases.resolve(session, customer_id)
    row = await admin.loyalty_account(session, customer_id)
    if row is None:
        return {"customer_id": customer_id, "points": 0, "level": "normal", "rolling_12m_spend": 0.0}
    return {
        "customer_id": customer_id,
        "points": row.points,
        "level": row.level,
        "rolling_12m_spend": float(row.rolling_spend),
        "updated_at": row.updated_at.isoformat(),
    }


async def coupon(session: AsyncSession, code: str) -> dict[str, Any]:
    row = await admin.coupon(session, normalize_code(code))
    if row is None:
        raise NotFound("no such coupon")
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
