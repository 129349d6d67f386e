"""Each guard's skip is recorded with its reason; quiet hours defer instead of skipping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.campaign.adapters.channels import WebhookChannel
from tests.campaign.integration.harness import NOON, Harness, WebhookServer, event

SMS = {"type": "message", "channel": "sms", "body": "Hello {name}"}
COUPON_10_USD = {"type": "coupon", "kind": "amount", "value": 10, "currency": "USD"}
STAGE = {"kind": "stage_entered", "stage": "at_risk"}


async def customer(h: Harness, cid: str, **metrics: Any) -> None:
    base: dict[str, Any] = {"name": "Bo", "phone": "+15550100", "consents": {"sms": True}}
    await h.handle(h.handlers.on_profile_change, event("profile.updated", cid, {"metrics": {**base, **metrics}}))


async def trigger(h: Harness, cid: str, at: datetime = NOON) -> None:
    data = {"kind": "stage_changed", "old": "active", "new": "at_risk"}
    await h.handle(h.handlers.on_score_change, event("threshold.crossed", cid, data, at))


async def outcome(h: Harness, cid: str) -> list[tuple[str, str | None]]:
    return [(row.status, row.reason) for row in await h.actions(cid)]


async def test_consent_withdrawn_by_consent_changed(harness: Harness) -> None:
    h = harness
    await h.add_campaign("m", {"name": "m", "trigger": STAGE, "actions": [SMS]})
    await customer(h, "c-1")
    await h.handle(h.handlers.on_customer_event, event("consent.changed", "c-1", {"channel": "sms", "granted": False}))
    await trigger(h, "c-1")
    assert await outcome(h, "c-1") == [("skipped", "no_consent")]


async def test_global_opt_out(harness: Harness) -> None:
    h = harness
    await h.add_campaign("m", {"name": "m", "trigger": STAGE, "actions": [SMS, COUPON_10_USD]})
    await customer(h, "c-1", tags=["do_not_contact"])
    await trigger(h, "c-1")
    assert await outcome(h, "c-1") == [("skipped", "opted_out"), ("skipped", "opted_out")]


async def test_frequency_cap_two_messages_per_seven_days(harness: Harness) -> None:
    h = harness
    for n in range(3):
        await h.add_campaign(f"m{n}", {"name": f"m{n}", "trigger": STAGE, "actions": [SMS]})
    await customer(h, "c-1")
    await trigger(h, "c-1")
    assert await outcome(h, "c-1") == [("pending", None), ("pending", None), ("skipped", "frequency_cap")]


async def test_budget_max_sends(harness: Harness) -> None:
    h = harness
    await h.add_campaign("b", {"name": "b", "trigger": STAGE, "actions": [COUPON_10_USD], "budget": {"max_sends": 1}})
    await trigger(h, "c-1")
    await trigger(h, "c-2")
    assert await outcome(h, "c-1") == [("issued", None)]
    assert await outcome(h, "c-2") == [("skipped", "budget_exhausted")]


async def test_budget_coupon_value(harness: Harness) -> None:
    h = harness
    budget = {"max_coupon_value": 15}
    await h.add_campaign("b", {"name": "b", "trigger": STAGE, "actions": [COUPON_10_USD], "budget": budget})
    await trigger(h, "c-1")
    await trigger(h, "c-2")
    assert [row.reason for row in await h.actions()] == [None, "budget_exhausted"]
    assert (await h.actions("c-2"))[0].payload["limit"] == "max_coupon_value"


async def test_schedule_window_and_audience(harness: Harness) -> None:
    h = harness
    later = {"starts_at": (NOON + timedelta(days=1)).isoformat()}
    ended = {"ends_at": (NOON - timedelta(days=1)).isoformat()}
    await h.add_campaign("early", {"name": "e", "trigger": STAGE, "actions": [COUPON_10_USD], "schedule": later})
    await h.add_campaign("late", {"name": "l", "trigger": STAGE, "actions": [COUPON_10_USD], "schedule": ended})
    await h.add_campaign(
        "eu", {"name": "eu", "trigger": STAGE, "actions": [COUPON_10_USD], "audience": {"regions": ["eu"]}}
    )
    await customer(h, "c-1", region="us")
    await trigger(h, "c-1")
    reasons = {row.campaign_id: row.reason for row in await h.actions("c-1")}
    assert reasons == {"early": "before_schedule", "late": "after_schedule", "eu": "audience_mismatch"}


async def test_paused_campaign_fired_by_the_scheduler_records_its_status(harness: Harness) -> None:
    h = harness
    await h.add_campaign("bd", {"name": "bd", "trigger": {"kind": "birthday"}, "actions": [COUPON_10_USD]})
    await customer(h, "c-1", birthday="2000-03-11")
    await h.set_status("bd", "paused")  # after scheduling: the row stays, the decision changes
    h.clock.now = NOON + timedelta(days=1)
    assert await h.scheduler().run_once() == 1
    assert await outcome(h, "c-1") == [("skipped", "campaign_not_active")]


async def test_missing_address_is_recorded(harness: Harness) -> None:
    h = harness
    await h.add_campaign("m", {"name": "m", "trigger": STAGE, "actions": [SMS]})
    await customer(h, "c-1", phone=None)
    await trigger(h, "c-1")
    assert await outcome(h, "c-1") == [("skipped", "no_address")]


async def test_quiet_hours_defer_then_send_in_the_morning(harness: Harness) -> None:
    h = harness
    await h.add_campaign("m", {"name": "m", "trigger": STAGE, "actions": [SMS]})
    await customer(h, "c-1", timezone="Asia/Shanghai")  # UTC+8
    night = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    h.clock.now = night
    await trigger(h, "c-1", night)
    [row] = await h.actions("c-1")
    assert (row.status, row.reason) == ("deferred", "quiet_hours")
    assert row.next_attempt_at == datetime(2026, 3, 11, 0, 0, tzinfo=UTC)  # 08:00 Shanghai

    async with WebhookServer() as gateway:
        h.channels.messages["sms"] = WebhookChannel(gateway.url, 5)
        assert await h.sender().run_once() == 0  # still night
        h.clock.now = row.next_attempt_at
        assert await h.sender().run_once() == 1
        assert len(gateway.calls) == 1
    assert await outcome(h, "c-1") == [("sent", None)]
    assert await h.outbox_types() == ["message.sent"]


async def test_deferred_message_is_skipped_if_consent_went_overnight(harness: Harness) -> None:
    h = harness
    await h.add_campaign("m", {"name": "m", "trigger": STAGE, "actions": [SMS]})
    await customer(h, "c-1", timezone="Asia/Shanghai")
    night = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    h.clock.now = night
    await trigger(h, "c-1", night)
    await h.handle(h.handlers.on_customer_event, event("consent.changed", "c-1", {"channel": "sms", "granted": False}))
    h.clock.now = night + timedelta(hours=10)
    assert await h.sender().run_once() == 1
    assert await outcome(h, "c-1") == [("skipped", "no_consent")]
