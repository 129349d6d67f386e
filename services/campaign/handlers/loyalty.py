"""Loyalty points and levels from purchases, coupon redemption, and `loyalty.level_changed`.

Levels follow rolling 12-month spend as of the purchase's event time, so a replay of history
yields the same levels. A level change is emitted on `campaign-actions` and returned, so the
caller can fire `loyalty_level_changed` campaigns in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.consumer import HandlerContext
from libs.common.contracts import LoyaltyLevelChanged, derived
from libs.common.envelope import CloudEvent
from services.campaign.adapters import bulk, campaigns
from services.campaign.adapters.tables import loyalty_accounts, purchases
from services.campaign.domain.coupons import normalize_code
from services.campaign.domain.loyalty import LevelChange, level_change, level_for, rolling_spend, total_points
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
        await campaigns.redeem_coupon(ctx.session, code, event.subject, order_id, event.time)
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
    return await emit_level_change(ctx, event, change)


@dataclass
class _Account:
    orders: dict[str, list[Any]]  # order id → [time, amount, refunded]
    level: str
    values: dict[str, Any] | None = None  # points, level, rolling spend after the batch's last recompute


@dataclass
class LoyaltyLedger:
    """Loyalty of a batch's customers, held in memory: each purchase or refund recomputes as `recompute_loyalty`
    would (so every level change of the sequence is seen and emitted), the rows are written once at the end."""

    deps: CampaignDeps
    accounts: dict[str, _Account] = field(default_factory=dict)
    new_purchases: list[dict[str, Any]] = field(default_factory=list)
    refunds: set[tuple[str, str]] = field(default_factory=set)

    async def load(self, session: AsyncSession, customer_ids: Collection[str]) -> None:
        wanted = [cid for cid in customer_ids if cid not in self.accounts]
        if not wanted:
            return
        history = await bulk.load_purchases(session, wanted)
        levels = await bulk.load_levels(session, wanted)
        for cid in wanted:
            orders = {order: [at, amount, refunded] for order, at, amount, refunded in history[cid]}
            self.accounts[cid] = _Account(orders, levels.get(cid, "normal"))

    def forget(self, customer_ids: Iterable[str]) -> None:
        for cid in customer_ids:
            self.accounts.pop(cid, None)

    def add_purchase(self, event: CloudEvent, order_id: str, code: str | None) -> bool:
        """False when the customer has this order already (the same order under another event id)."""
        account = self.accounts[event.subject]
        if order_id in account.orders:
            return False
        amount = _amount(event.data.get("amount"))
        account.orders[order_id] = [event.time, amount, False]
        self.new_purchases.append(
            {
                "customer_id": event.subject,
                "order_id": order_id,
                "amount": amount,
                "currency": event.data.get("currency"),
                "purchased_at": event.time,
                "coupon_code": code,
                "refunded": False,
            }
        )
        return True

    def refund(self, customer_id: str, order_id: str) -> bool:
        order = self.accounts[customer_id].orders.get(order_id)
        if order is None:
            return False
        order[2] = True
        self.refunds.add((customer_id, order_id))
        return True

    def recompute(self, event: CloudEvent) -> LevelChange | None:
        account = self.accounts[event.subject]
        history = [(at, amount, refunded) for at, amount, refunded in account.orders.values()]
        as_of = max(max((at for at, _, _ in history), default=event.time), event.time)
        spend = rolling_spend(history, as_of)
        new_level = level_for(spend, self.deps.loyalty)
        account.values = {
            "points": total_points(history, self.deps.loyalty),
            "level": new_level,
            "rolling_spend": spend,
        }
        change = level_change(account.level, new_level)  # type: ignore[arg-type]
        account.level = new_level
        return change

    async def flush(self, session: AsyncSession) -> None:
        purchases_due, self.new_purchases = self.new_purchases, []
        await bulk.insert_purchases(session, purchases_due)
        refunds_due, self.refunds = self.refunds, set()
        await bulk.mark_refunded(session, refunds_due)
        rows = []
        for cid, account in self.accounts.items():
            if account.values is not None:
                rows.append({"customer_id": cid, **account.values})
                account.values = None
        await bulk.upsert_loyalty(session, rows)


async def emit_level_change(ctx: HandlerContext, event: CloudEvent, change: LevelChange) -> CloudEvent:
    topic, level_event = derived(
        LoyaltyLevelChanged(old=change.old, new=change.new),
        cause=event,
        source=SOURCE,
        subject=event.subject,
        time=event.time,
    )
    await ctx.emit(topic, level_event)
    return level_event
