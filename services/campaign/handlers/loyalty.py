"""Loyalty points and levels from purchases, coupon redemption, and `loyalty.level_changed`.

Levels follow rolling 12-month spend as of the purchase's event time, so a replay of history
yields the same levels. A level change is emitted on `campaign-actions` and returned, so the
caller can fire `loyalty_level_changed` campaigns in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, derived_event
from libs.common.topics import CAMPAIGN_ACTIONS
from services.campaign.adapters import repository as repo
from services.campaign.adapters.tables import loyalty_accounts, purchases
from services.campaign.domain.coupons import normalize_code
from services.campaign.domain.loyalty import level_change, level_for, rolling_spend, total_points
from services.campaign.domain.triggers import LOYALTY_LEVEL_CHANGED
from services.campaign.handlers.deps import SOURCE, CampaignDeps


def _amount(raw: Any) -> Decimal:
    try:
        return Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return Decimal(0)


async def record_purchase(deps: CampaignDeps, ctx: HandlerContext, event: CloudEvent) -> CloudEvent | None:
    data = event.data
    order_id = str(data.get("order_id") or event.id)
    code = normalize_code(str(data["coupon_code"])) if data.get("coupon_code") else None
    inserted = await ctx.session.scalar(
        pg_insert(purchases)
        .values(
            customer_id=event.subject,
            order_id=order_id,
            amount=_amount(data.get("amount")),
            currency=data.get("currency"),
            purchased_at=event.time,
            coupon_code=code,
        )
        .on_conflict_do_nothing()
        .returning(purchases.c.order_id)
    )
    if inserted is None:
        return None  # the same order under another event id: counted once
    if code:
        # Redemption is attributed to the coupon's campaign (and variant) through the coupon row.
        await repo.redeem_coupon(ctx.session, code, event.subject, order_id, event.time)
    return await recompute_loyalty(deps, ctx, event)


async def record_refund(deps: CampaignDeps, ctx: HandlerContext, event: CloudEvent) -> CloudEvent | None:
    order_id = event.data.get("order_id")
    if not order_id:
        return None
    refunded = await ctx.session.scalar(
        update(purchases)
        .where(purchases.c.customer_id == event.subject, purchases.c.order_id == str(order_id))
        .values(refunded=True)
        .returning(purchases.c.order_id)
    )
    if refunded is None:
        return None
    return await recompute_loyalty(deps, ctx, event)


async def recompute_loyalty(deps: CampaignDeps, ctx: HandlerContext, event: CloudEvent) -> CloudEvent | None:
    """Points and level of `event.subject` from the stored purchases; idempotent however often it runs."""
    rows = (
        await ctx.session.execute(
            select(purchases.c.purchased_at, purchases.c.amount, purchases.c.refunded).where(
                purchases.c.customer_id == event.subject
            )
        )
    ).all()
    history = [(at, Decimal(amount), refunded) for at, amount, refunded in rows]
    as_of = max((at for at, _, _ in history), default=event.time)
    as_of = max(as_of, event.time)
    spend = rolling_spend(history, as_of)
    points = total_points(history, deps.loyalty)
    new_level = level_for(spend, deps.loyalty)
    old_level = await ctx.session.scalar(
        select(loyalty_accounts.c.level).where(loyalty_accounts.c.customer_id == event.subject).with_for_update()
    )
    values = {"points": points, "level": new_level, "rolling_spend": spend, "updated_at": func.now()}
    await ctx.session.execute(
        pg_insert(loyalty_accounts)
        .values(customer_id=event.subject, **values)
        .on_conflict_do_update(index_elements=[loyalty_accounts.c.customer_id], set_=values)
    )
    change = level_change(old_level or "normal", new_level)
    if change is None:
        return None
    level_event = derived_event(
        cause=event,
        source=SOURCE,
        type=LOYALTY_LEVEL_CHANGED,
        subject=event.subject,
        time=event.time,
        data={"old": change.old, "new": change.new},
    )
    await ctx.emit(CAMPAIGN_ACTIONS, level_event)
    return level_event
