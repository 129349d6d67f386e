"""Profile joins ids (profile.merged, profile.aliased): campaign counts the person once from then on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from libs.common.consumer import HandlerContext
from services.campaign.adapters import campaigns
from services.campaign.adapters.tables import loyalty_accounts, purchases
from tests.campaign.integration.harness import NOON, Harness, event

COUPON = {"type": "coupon", "kind": "percent", "value": 10}


async def buy(h: Harness, customer: str, order_id: str, amount: int, hours: int = 0) -> None:
    data = {"order_id": order_id, "amount": amount, "currency": "USD"}
    await h.handle(h.handlers.on_customer_event, event("purchase", customer, data, NOON + timedelta(hours=hours)))


async def orders(h: Harness) -> dict[str, set[str]]:
    async with h.sessions() as session:
        rows = (await session.execute(select(purchases.c.customer_id, purchases.c.order_id))).all()
    found: dict[str, set[str]] = {}
    for customer, order_id in rows:
        found.setdefault(customer, set()).add(order_id)
    return found


async def levels(h: Harness) -> dict[str, str]:
    async with h.sessions() as session:
        rows = (await session.execute(select(loyalty_accounts.c.customer_id, loyalty_accounts.c.level))).all()
    return {customer: level for customer, level in rows}


async def test_a_merge_moves_purchases_coupons_and_consent_and_later_events_follow(harness: Harness) -> None:
    h = harness
    await h.set_builtin(True)
    await h.add_campaign(
        "silver", {"name": "silver", "trigger": {"kind": "loyalty_level_changed", "to": "silver"}, "actions": [COUPON]}
    )
    # The shop and the ERP post the same person under their own ids; neither alone reaches silver (1,000).
    await buy(h, "c-shop", "o-1", 400)
    await buy(h, "c-erp", "o-2", 700)
    await h.handle(
        h.handlers.on_customer_event, event("consent.changed", "c-shop", {"channel": "email", "granted": False})
    )
    await h.handle(h.handlers.on_score_change, event("threshold.crossed", "c-shop", {"kind": "tier_up", "new": "high"}))
    consents = {"metrics": {"name": "Ann", "consents": {"email": True, "sms": True}}}
    await h.handle(h.handlers.on_profile_change, event("profile.updated", "c-erp", consents))
    assert await levels(h) == {"c-shop": "normal", "c-erp": "normal"}

    merged = event("profile.merged", "c-erp", {"survivor_id": "c-erp", "merged_id": "c-shop"})
    await h.handle(h.handlers.on_profile_change, merged)

    # One account with both purchases: 1,100 of spend is silver, which fires the silver campaign for the survivor.
    assert await orders(h) == {"c-erp": {"o-1", "o-2"}}
    assert await levels(h) == {"c-erp": "silver"}
    actions = await h.actions()
    assert {row.customer_id for row in actions} == {"c-erp"}
    assert "silver" in {row.campaign_id for row in actions} and len(actions) == 2  # and the moved welcome coupon
    async with h.sessions() as session:
        facts = await campaigns.load_facts(session, "c-erp")
        gone = await campaigns.load_facts(session, "c-shop")
    assert facts["consents"] == {"email": False, "sms": True} and facts["name"] == "Ann"
    assert gone["consents"] == {} and gone.get("name") is None

    # The shop keeps posting under its id: that counts for the survivor now. Redelivering the merge changes nothing.
    await buy(h, "c-shop", "o-3", 10, hours=1)
    await h.handle(h.handlers.on_profile_change, merged)
    assert await orders(h) == {"c-erp": {"o-1", "o-2", "o-3"}}
    assert await levels(h) == {"c-erp": "silver"}


async def test_aliases_chain_and_erasure_forgets_them(harness: Harness) -> None:
    h = harness
    await buy(h, "c-x", "o-1", 50)
    aliased = event("profile.aliased", "c-2", {"customer_id": "c-2", "alias_id": "c-x"})
    await h.handle(h.handlers.on_profile_change, aliased)
    await h.handle(
        h.handlers.on_profile_change, event("profile.merged", "c-3", {"survivor_id": "c-3", "merged_id": "c-2"})
    )
    await buy(h, "c-x", "o-2", 60, hours=1)
    assert await orders(h) == {"c-3": {"o-1", "o-2"}}

    await h.handle(h.handlers.on_profile_change, event("customer.erased", "c-3", {"customer_id": "c-3"}))
    assert await orders(h) == {}
    # Erased, the old ids lead nowhere: what arrives under them starts afresh.
    await buy(h, "c-x", "o-3", 70, hours=2)
    assert await orders(h) == {"c-x": {"o-3"}}


async def test_a_purchase_racing_the_join_of_its_id_still_ends_up_with_the_customer(harness: Harness) -> None:
    """Customer events and joins come on different topics and run side by side."""
    h = harness
    aliased = event("profile.aliased", "c-1", {"customer_id": "c-1", "alias_id": "c-x"})
    async with h.sessions() as session, session.begin():
        data = {"order_id": "o-1", "amount": 50, "currency": "USD"}
        await h.handlers.on_customer_event(HandlerContext(session, h.deps.outbox), event("purchase", "c-x", data))
        # The purchase is written under c-x and not committed yet: the join must wait for it, not move around it.
        join = asyncio.create_task(h.handle(h.handlers.on_profile_change, aliased))
        await asyncio.sleep(0.5)
        assert not join.done()
    await join
    assert await orders(h) == {"c-1": {"o-1"}}
