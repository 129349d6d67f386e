"""Queries on campaign's own schema, so handlers read as use cases rather than SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.tables import (
    actions,
    assignments,
    campaigns,
    coupons,
    customer_facts,
    loyalty_accounts,
    scheduled_triggers,
)
from services.campaign.domain.definitions import CampaignDefinition

# Statuses that count as "this action happened" for budgets and frequency caps.
LIVE_STATUSES = ("issued", "pending", "sent")


@dataclass(frozen=True)
class StoredCampaign:
    id: str
    definition: CampaignDefinition
    builtin: bool


def _stored(row: Any) -> StoredCampaign:
    return StoredCampaign(row.id, CampaignDefinition.model_validate(row.definition), row.builtin)


async def active_campaigns(session: AsyncSession, *, include_builtin: bool) -> list[StoredCampaign]:
    query = select(campaigns).where(campaigns.c.status == "active").order_by(campaigns.c.id)
    if not include_builtin:
        query = query.where(campaigns.c.builtin.is_(False))
    return [_stored(row) for row in (await session.execute(query)).all()]


async def load_campaign(session: AsyncSession, campaign_id: str, *, lock: bool = False) -> StoredCampaign | None:
    query = select(campaigns).where(campaigns.c.id == campaign_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return _stored(row) if row is not None else None


async def load_facts(session: AsyncSession, customer_id: str) -> dict[str, Any]:
    """The customer's facts as a dict; an unknown customer is an empty one (every field None)."""
    row = (await session.execute(select(customer_facts).where(customer_facts.c.customer_id == customer_id))).first()
    if row is None:
        return {"customer_id": customer_id, "consents": {}, "segments": [], "opted_out": False}
    return dict(row._mapping)


async def upsert_facts(session: AsyncSession, customer_id: str, values: Mapping[str, Any]) -> None:
    """Writes only the given columns; a fact nobody mentioned keeps its value."""
    values = {**values, "updated_at": func.now()}
    await session.execute(
        pg_insert(customer_facts)
        .values(customer_id=customer_id, **values)
        .on_conflict_do_update(index_elements=[customer_facts.c.customer_id], set_=values)
    )


async def loyalty_points(session: AsyncSession, customer_id: str) -> int:
    points = await session.scalar(
        select(loyalty_accounts.c.points).where(loyalty_accounts.c.customer_id == customer_id)
    )
    return int(points or 0)


async def action_exists(session: AsyncSession, key: str) -> bool:
    return (await session.scalar(select(actions.c.id).where(actions.c.idempotency_key == key))) is not None


async def insert_action(session: AsyncSession, values: Mapping[str, Any]) -> int | None:
    """The row id, or None when the idempotency key exists already (a duplicate decision)."""
    result = await session.scalar(
        pg_insert(actions)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[actions.c.idempotency_key])
        .returning(actions.c.id)
    )
    return int(result) if result is not None else None


async def marketing_send_times(
    session: AsyncSession, customer_id: str, since: datetime, *, exclude: int | None = None
) -> list[datetime]:
    query = select(actions.c.decided_at).where(
        actions.c.customer_id == customer_id,
        actions.c.kind == "message",
        actions.c.status.in_(("pending", "sent")),
        actions.c.decided_at > since,
    )
    if exclude is not None:
        query = query.where(actions.c.id != exclude)
    return list((await session.execute(query)).scalars())


async def campaign_counters(session: AsyncSession, campaign_id: str) -> tuple[int, Decimal]:
    """Sends so far (any action that happened) and the face value of amount coupons issued."""
    sends = await session.scalar(
        select(func.count()).where(actions.c.campaign_id == campaign_id, actions.c.status.in_(LIVE_STATUSES))
    )
    value = await session.scalar(
        select(func.coalesce(func.sum(coupons.c.value), 0)).where(
            coupons.c.campaign_id == campaign_id, coupons.c.discount_type == "amount"
        )
    )
    return int(sends or 0), Decimal(value or 0)


async def record_assignment(
    session: AsyncSession, campaign_id: str, customer_id: str, variant: str, at: datetime
) -> None:
    # The first trigger is the assignment time; later triggers do not move the conversion window.
    await session.execute(
        pg_insert(assignments)
        .values(campaign_id=campaign_id, customer_id=customer_id, variant=variant, assigned_at=at)
        .on_conflict_do_nothing()
    )


async def redeem_coupon(
    session: AsyncSession, code: str, customer_id: str, order_id: str, at: datetime
) -> Sequence[Any] | None:
    """Marks a coupon redeemed if it is the customer's, live and unused; returns (campaign_id, variant)."""
    row = (
        await session.execute(
            update(coupons)
            .where(
                and_(
                    coupons.c.code == code,
                    coupons.c.customer_id == customer_id,
                    coupons.c.redeemed_at.is_(None),
                    coupons.c.issued_at <= at,
                    coupons.c.expires_at > at,
                )
            )
            .values(redeemed_at=at, redeemed_order_id=order_id)
            .returning(coupons.c.campaign_id, coupons.c.variant)
        )
    ).first()
    return tuple(row) if row is not None else None


async def touch_purchase(session: AsyncSession, customer_id: str, at: datetime) -> None:
    """First/last purchase and last activity move only forwards (events may arrive out of order)."""
    facts = customer_facts.c
    inserted = pg_insert(customer_facts).values(
        customer_id=customer_id, first_purchase_at=at, last_purchase_at=at, last_activity_at=at
    )
    excluded = inserted.excluded
    await session.execute(
        inserted.on_conflict_do_update(
            index_elements=[facts.customer_id],
            set_={
                "first_purchase_at": func.least(facts.first_purchase_at, excluded.first_purchase_at),
                "last_purchase_at": func.greatest(facts.last_purchase_at, excluded.last_purchase_at),
                "last_activity_at": func.greatest(facts.last_activity_at, excluded.last_activity_at),
                "updated_at": func.now(),
            },
        )
    )


async def touch_activity(session: AsyncSession, customer_id: str, at: datetime) -> None:
    inserted = pg_insert(customer_facts).values(customer_id=customer_id, last_activity_at=at)
    await session.execute(
        inserted.on_conflict_do_update(
            index_elements=[customer_facts.c.customer_id],
            set_={
                "last_activity_at": func.greatest(
                    customer_facts.c.last_activity_at, inserted.excluded.last_activity_at
                ),
                "updated_at": func.now(),
            },
        )
    )


async def due_triggers(session: AsyncSession, now: datetime, limit: int) -> list[Any]:
    """Pending scheduled triggers due by `now`, oldest first (not locked: see `claim_triggers`)."""
    query = (
        select(scheduled_triggers.c.id, scheduled_triggers.c.customer_id)
        .where(scheduled_triggers.c.status == "pending", scheduled_triggers.c.fire_at <= now)
        .order_by(scheduled_triggers.c.fire_at, scheduled_triggers.c.id)
        .limit(limit)
    )
    return list((await session.execute(query)).all())


async def claim_triggers(session: AsyncSession, ids: Sequence[int]) -> list[Any]:
    """Those of `ids` still pending, locked for this transaction; another replica's claims are skipped."""
    if not ids:
        return []
    query = (
        select(scheduled_triggers)
        .where(scheduled_triggers.c.id.in_(ids), scheduled_triggers.c.status == "pending")
        .order_by(scheduled_triggers.c.fire_at, scheduled_triggers.c.id)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).all())
