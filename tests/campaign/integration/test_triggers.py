"""Each trigger kind, through the consumer handlers (event triggers) or the scheduler (time triggers)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.campaign.adapters import campaigns
from services.campaign.adapters.tables import scheduled_triggers
from services.campaign.domain.coupons import is_valid_code
from services.campaign.domain.definitions import CampaignDefinition
from services.campaign.handlers import admin
from services.campaign.handlers.scheduler import schedule_campaign_for_everyone
from tests.campaign.integration.harness import NOON, Harness, event

EMAIL = {"type": "message", "channel": "email", "subject": "Hi {name}", "body": "Enjoy {favourite_category}"}
COUPON = {"type": "coupon", "kind": "percent", "value": 10}


async def known_customer(h: Harness, customer: str, **metrics: Any) -> None:
    data = {"metrics": {"name": "Ann", "email": f"{customer}@example.com", "consents": {"email": True}, **metrics}}
    await h.handle(h.handlers.on_profile_change, event("profile.updated", customer, data))


async def test_builtin_top_tier_welcome_issues_one_coupon_per_crossing(harness: Harness) -> None:
    h = harness
    await h.set_builtin(True)
    crossing = event("threshold.crossed", "c-1", {"kind": "tier_up", "old": "medium", "new": "high"})
    await h.handle(h.handlers.on_score_change, crossing)
    # Redelivered under another id (e.g. scoring replayed): same window, so no second coupon.
    again = event("threshold.crossed", "c-1", {"kind": "tier_up", "old": "medium", "new": "high"})
    await h.handle(h.handlers.on_score_change, again)
    # Crossing into the middle tier is not the top tier.
    await h.handle(h.handlers.on_score_change, event("threshold.crossed", "c-2", {"kind": "tier_up", "new": "medium"}))

    rows = await h.actions()
    assert [(r.customer_id, r.kind, r.status) for r in rows] == [("c-1", "coupon", "issued")]
    assert is_valid_code(rows[0].payload["code"])
    assert await h.outbox_types() == ["coupon.issued"]


async def test_builtin_campaign_can_be_switched_off_by_setting(harness: Harness) -> None:
    h = harness
    await h.set_builtin(True)
    h.deps.settings = h.settings.model_copy(update={"builtin_campaigns": False})
    await h.handle(h.handlers.on_score_change, event("threshold.crossed", "c-1", {"kind": "tier_up", "new": "high"}))
    assert await h.actions() == []


async def test_stage_entered_queues_a_personalised_email(harness: Harness) -> None:
    h = harness
    await h.add_campaign(
        "stage", {"name": "at risk", "trigger": {"kind": "stage_entered", "stage": "at_risk"}, "actions": [EMAIL]}
    )
    await known_customer(h, "c-1", favourite_category="books")
    await h.handle(
        h.handlers.on_score_change,
        event("threshold.crossed", "c-1", {"kind": "stage_changed", "old": "active", "new": "at_risk"}),
    )
    [row] = await h.actions()
    assert (row.kind, row.status, row.channel) == ("message", "pending", "email")
    assert row.payload["subject"] == "Hi Ann"
    assert row.payload["body"] == "Enjoy books"
    assert row.payload["to"] == "c-1@example.com"


async def test_segment_entered(harness: Harness) -> None:
    h = harness
    await h.add_campaign(
        "seg", {"name": "vip", "trigger": {"kind": "segment_entered", "segment": "vip"}, "actions": [COUPON]}
    )
    data = {"metrics": {}, "segments_entered": ["vip"], "segments_left": []}
    await h.handle(h.handlers.on_profile_change, event("profile.updated", "c-1", data))
    await h.handle(
        h.handlers.on_profile_change, event("profile.updated", "c-2", {"metrics": {}, "segments_entered": ["x"]})
    )
    assert [(r.customer_id, r.status) for r in await h.actions()] == [("c-1", "issued")]


async def test_low_nps_raises_an_alert(harness: Harness) -> None:
    h = harness
    h.deps.settings = h.settings.model_copy(update={"alert_email": "am@example.com"})
    await h.add_campaign(
        "nps",
        {
            "name": "detractor",
            "trigger": {"kind": "low_nps"},
            "actions": [{"type": "alert", "message": "{name} is unhappy"}],
        },
    )
    await known_customer(h, "c-1")
    await h.handle(h.handlers.on_feedback, event("feedback.received", "c-1", {"score_type": "nps", "score": 3}))
    await h.handle(h.handlers.on_feedback, event("feedback.received", "c-2", {"score_type": "nps", "score": 9}))
    [row] = await h.actions()
    assert (row.customer_id, row.kind, row.status, row.payload["body"]) == ("c-1", "alert", "pending", "Ann is unhappy")


async def test_loyalty_level_change_is_emitted_and_triggers(harness: Harness) -> None:
    h = harness
    await h.add_campaign(
        "silver", {"name": "silver", "trigger": {"kind": "loyalty_level_changed", "to": "silver"}, "actions": [COUPON]}
    )
    small = {"order_id": "o-1", "amount": 400, "currency": "USD"}
    big = {"order_id": "o-2", "amount": 700, "currency": "USD"}
    await h.handle(h.handlers.on_customer_event, event("purchase", "c-1", small))
    assert await h.actions() == []
    await h.handle(h.handlers.on_customer_event, event("purchase", "c-1", big, NOON + timedelta(hours=1)))
    [row] = await h.actions()
    assert (row.campaign_id, row.status, row.trigger["details"]) == (
        "silver",
        "issued",
        {"old": "normal", "new": "silver"},
    )
    assert await h.outbox_types() == ["loyalty.level_changed", "coupon.issued"]


TIME_TRIGGERS = [
    # (trigger, event that sets the facts, days until due)
    pytest.param(
        {"kind": "days_after_purchase", "anchor": "last", "days": 3},
        ("on_customer_event", "purchase", {"order_id": "o-1", "amount": 10, "currency": "USD"}),
        3,
        id="days_after_purchase",
    ),
    pytest.param(
        {"kind": "birthday"},
        ("on_profile_change", "profile.updated", {"metrics": {"birthday": "1990-03-15"}}),
        5,
        id="birthday",
    ),
    pytest.param(
        {"kind": "replenishment_due", "days_before": 2},
        ("on_score_change", "score.changed", {"tier": "low", "predicted_next_purchase_at": "2026-03-20T00:00:00Z"}),
        8,
        id="replenishment_due",
    ),
    pytest.param(
        {"kind": "inactivity", "days": 30},
        ("on_customer_event", "login", {"channel": "web"}),
        30,
        id="inactivity",
    ),
]


@pytest.mark.parametrize(("trigger", "fact_event", "days"), TIME_TRIGGERS)
async def test_time_trigger_fires_once_on_its_day(
    harness: Harness, trigger: dict[str, Any], fact_event: tuple[str, str, dict[str, Any]], days: int
) -> None:
    h = harness
    await h.add_campaign("timed", {"name": "timed", "trigger": trigger, "actions": [COUPON]})
    handler, type_, data = fact_event
    await h.handle(getattr(h.handlers, handler), event(type_, "c-1", data))

    h.clock.now = NOON + timedelta(days=days - 1)
    assert await h.scheduler().run_once() == 0  # not yet due
    h.clock.now = NOON + timedelta(days=days)  # due at 10:00 local (UTC) on the day; it is noon
    assert await h.scheduler().run_once() == 1
    assert await h.scheduler().run_once() == 0  # a restart or second pass does not fire it again
    [row] = await h.actions()
    assert (row.campaign_id, row.status, row.trigger["kind"]) == ("timed", "issued", trigger["kind"])


async def test_new_purchase_moves_a_pending_days_after_purchase_trigger(harness: Harness) -> None:
    h = harness
    await h.add_campaign(
        "d3",
        {"name": "d3", "trigger": {"kind": "days_after_purchase", "anchor": "last", "days": 3}, "actions": [COUPON]},
    )
    await h.handle(
        h.handlers.on_customer_event, event("purchase", "c-1", {"order_id": "o-1", "amount": 5, "currency": "USD"})
    )
    later = NOON + timedelta(days=2)
    h.clock.now = later
    await h.handle(
        h.handlers.on_customer_event,
        event("purchase", "c-1", {"order_id": "o-2", "amount": 5, "currency": "USD"}, later),
    )
    h.clock.now = NOON + timedelta(days=3)
    assert await h.scheduler().run_once() == 0  # the first date was replaced by the second
    h.clock.now = later + timedelta(days=3)
    assert await h.scheduler().run_once() == 1


async def test_a_time_triggered_campaign_created_later_covers_every_known_customer_once(harness: Harness) -> None:
    h = harness
    for customer in ("c-1", "c-2"):
        await h.handle(
            h.handlers.on_customer_event,
            event("purchase", customer, {"order_id": f"o-{customer}", "amount": 5, "currency": "USD"}),
        )
    await known_customer(h, "c-3")  # known, but never bought: no date after a purchase
    trigger = {"kind": "days_after_purchase", "anchor": "last", "days": 3}
    definition = CampaignDefinition.model_validate({"name": "later", "trigger": trigger, "actions": [COUPON]})
    async with h.sessions() as session:
        created = await admin.create_campaign(h.deps, session, definition)
    async with h.sessions() as session, session.begin():  # saved again: the same rows, none twice
        stored = await campaigns.load_campaign(session, created["id"])
        assert stored is not None
        await schedule_campaign_for_everyone(h.deps, session, stored)
    async with h.sessions() as session:
        rows = (await session.execute(select(scheduled_triggers.c.customer_id, scheduled_triggers.c.status))).all()
    assert sorted(rows) == [("c-1", "pending"), ("c-2", "pending")]

    h.clock.now = NOON + timedelta(days=3)
    assert await h.scheduler().run_once() == 2
    assert sorted(row.customer_id for row in await h.actions(campaign=created["id"])) == ["c-1", "c-2"]
