"""The rows behind campaign's HTTP API: campaign definitions, a customer's actions and loyalty account, coupons."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import actions, campaigns, coupons, loyalty_accounts


async def campaign(session: AsyncSession, campaign_id: str) -> Any:
    return (await session.execute(select(campaigns).where(campaigns.c.id == campaign_id))).first()


async def all_campaigns(session: AsyncSession) -> list[Any]:
    return list((await session.execute(select(campaigns).order_by(campaigns.c.created_at, campaigns.c.id))).all())


async def insert_campaign(session: AsyncSession, campaign_id: str, name: str, definition: dict[str, Any]) -> None:
    await session.execute(
        campaigns.insert().values(id=campaign_id, name=name, definition=definition, status=definition["status"])
    )


async def update_campaign(session: AsyncSession, campaign_id: str, name: str, definition: dict[str, Any]) -> None:
    await session.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign_id)
        .values(name=name, definition=definition, status=definition["status"], updated_at=func.now())
    )


async def delete_campaign(session: AsyncSession, campaign_id: str) -> None:
    await session.execute(delete(campaigns).where(campaigns.c.id == campaign_id))


async def actions_of(session: AsyncSession, customer_id: str) -> list[Any]:
    query = select(actions).where(actions.c.customer_id == customer_id).order_by(actions.c.id)
    return list((await session.execute(query)).all())


async def loyalty_account(session: AsyncSession, customer_id: str) -> Any:
    query = select(loyalty_accounts).where(loyalty_accounts.c.customer_id == customer_id)
    return (await session.execute(query)).first()


async def coupon(session: AsyncSession, code: str) -> Any:
    return (await session.execute(select(coupons).where(coupons.c.code == code))).first()
