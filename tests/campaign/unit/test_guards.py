from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.campaign.domain.definitions import Action, CampaignDefinition
from services.campaign.domain.guards import Defer, GuardContext, GuardPolicy, Skip, evaluate_guards, quiet_hours_end

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SMS = {"type": "message", "channel": "sms", "body": "Hi {name}"}
COUPON = {"type": "coupon", "kind": "amount", "value": "20", "currency": "EUR"}
ALERT = {"type": "alert", "message": "{name} needs a call"}


def campaign(**overrides: Any) -> CampaignDefinition:
    body: dict[str, Any] = {
        "name": "c",
        "trigger": {"kind": "low_nps"},
        "actions": [SMS, COUPON, ALERT],
        "status": "active",
    }
    body.update(overrides)
    return CampaignDefinition.model_validate(body)


def action(c: CampaignDefinition, kind: str) -> Action:
    return next(a for a in c.actions if a.type == kind)


def ctx(**overrides: Any) -> GuardContext:
    fields: dict[str, Any] = {"now": NOON, "consents": {"sms": True, "email": True}}
    fields.update(overrides)
    return GuardContext(**fields)


def test_all_clear() -> None:
    c = campaign()
    for kind in ("message", "coupon", "alert"):
        assert evaluate_guards(c, action(c, kind), ctx()) is None


def test_inactive_campaign_is_skipped() -> None:
    c = campaign(status="paused")
    assert evaluate_guards(c, action(c, "alert"), ctx()) == Skip("campaign_not_active", {"status": "paused"})


def test_global_opt_out_blocks_customer_contact_but_not_internal_alerts() -> None:
    c = campaign()
    opted_out = ctx(opted_out=True)
    assert evaluate_guards(c, action(c, "message"), opted_out) == Skip("opted_out", {"action": "message"})
    assert evaluate_guards(c, action(c, "coupon"), opted_out) == Skip("opted_out", {"action": "coupon"})
    assert evaluate_guards(c, action(c, "alert"), opted_out) is None


def test_opt_out_is_checked_before_consent() -> None:
    c = campaign()
    result = evaluate_guards(c, action(c, "message"), ctx(opted_out=True, consents={}))
    assert isinstance(result, Skip)
    assert result.reason == "opted_out"


@pytest.mark.parametrize("consents", [{}, {"sms": False}, {"email": True}])
def test_messages_need_consent_for_their_channel(consents: dict[str, bool]) -> None:
    c = campaign()
    assert evaluate_guards(c, action(c, "message"), ctx(consents=consents)) == Skip("no_consent", {"channel": "sms"})


def test_coupons_and_alerts_are_not_consent_gated() -> None:
    c = campaign()
    assert evaluate_guards(c, action(c, "coupon"), ctx(consents={})) is None
    assert evaluate_guards(c, action(c, "alert"), ctx(consents={})) is None


def test_frequency_cap_allows_the_second_message_and_stops_the_third() -> None:
    c = campaign()
    msg = action(c, "message")
    assert evaluate_guards(c, msg, ctx(previous_sends=[NOON - timedelta(days=1)])) is None
    two = [NOON - timedelta(days=1), NOON - timedelta(days=6, hours=23)]
    result = evaluate_guards(c, msg, ctx(previous_sends=two))
    assert isinstance(result, Skip)
    assert result.reason == "frequency_cap"
    assert result.details["recent"] == 2


def test_frequency_cap_window_is_rolling_seven_days() -> None:
    c = campaign()
    # Exactly 7 days ago has left the window (since, now]; older sends never count.
    sends = [NOON - timedelta(days=1), NOON - timedelta(days=7), NOON - timedelta(days=30)]
    assert evaluate_guards(c, action(c, "message"), ctx(previous_sends=sends)) is None


def test_frequency_cap_ignores_coupons_and_alerts_and_is_configurable() -> None:
    c = campaign()
    sends = [NOON - timedelta(hours=h) for h in (1, 2, 3)]
    assert evaluate_guards(c, action(c, "coupon"), ctx(previous_sends=sends)) is None
    assert evaluate_guards(c, action(c, "alert"), ctx(previous_sends=sends)) is None
    assert evaluate_guards(c, action(c, "message"), ctx(previous_sends=sends), GuardPolicy(max_messages=4)) is None


@pytest.mark.parametrize(
    ("now", "tz", "expected"),
    [
        # 22:30 in Berlin (UTC+1 in March before DST) -> 08:00 Berlin next day = 07:00 UTC.
        (datetime(2026, 3, 10, 21, 30, tzinfo=UTC), "Europe/Berlin", datetime(2026, 3, 11, 7, 0, tzinfo=UTC)),
        # 02:00 in Berlin, after midnight -> 08:00 the same local day.
        (datetime(2026, 3, 10, 1, 0, tzinfo=UTC), "Europe/Berlin", datetime(2026, 3, 10, 7, 0, tzinfo=UTC)),
        # 12:00 UTC is 21:00 in Shanghai (UTC+8): quiet starts, ends 08:00 local = 00:00 UTC next day.
        (datetime(2026, 3, 10, 13, 0, tzinfo=UTC), "Asia/Shanghai", datetime(2026, 3, 11, 0, 0, tzinfo=UTC)),
        # 12:00 UTC is 05:00 in Los Angeles (PDT, UTC-7): quiet until 08:00 local = 15:00 UTC.
        (datetime(2026, 3, 10, 12, 0, tzinfo=UTC), "America/Los_Angeles", datetime(2026, 3, 10, 15, 0, tzinfo=UTC)),
        # Unknown zone falls back to UTC: 23:00 UTC -> 08:00 UTC next day.
        (datetime(2026, 3, 10, 23, 0, tzinfo=UTC), "Mars/Olympus", datetime(2026, 3, 11, 8, 0, tzinfo=UTC)),
        (datetime(2026, 3, 10, 23, 0, tzinfo=UTC), None, datetime(2026, 3, 11, 8, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_defer_until_local_morning(now: datetime, tz: str | None, expected: datetime) -> None:
    c = campaign()
    result = evaluate_guards(c, action(c, "message"), ctx(now=now, timezone=tz))
    assert isinstance(result, Defer)
    assert result.reason == "quiet_hours"
    assert result.defer_until == expected


@pytest.mark.parametrize(
    ("now", "tz"),
    [
        (datetime(2026, 3, 10, 12, 0, tzinfo=UTC), "Europe/Berlin"),  # 13:00
        (datetime(2026, 3, 10, 19, 59, tzinfo=UTC), "Europe/Berlin"),  # 20:59
        (datetime(2026, 3, 10, 7, 0, tzinfo=UTC), "Europe/Berlin"),  # exactly 08:00: quiet has ended
        (datetime(2026, 3, 10, 3, 0, tzinfo=UTC), "Asia/Tokyo"),  # 12:00
    ],
)
def test_outside_quiet_hours_goes_ahead(now: datetime, tz: str) -> None:
    c = campaign()
    assert evaluate_guards(c, action(c, "message"), ctx(now=now, timezone=tz)) is None


def test_quiet_hours_across_a_dst_change() -> None:
    # Berlin springs forward on 2026-03-29: 22:00 CET on the 28th ends at 08:00 CEST = 06:00 UTC.
    assert quiet_hours_end(datetime(2026, 3, 28, 21, 0, tzinfo=UTC), "Europe/Berlin") == datetime(
        2026, 3, 29, 6, 0, tzinfo=UTC
    )


def test_quiet_hours_only_defer_messages_and_can_be_daytime() -> None:
    c = campaign()
    night = ctx(now=datetime(2026, 3, 10, 23, 0, tzinfo=UTC))
    assert evaluate_guards(c, action(c, "coupon"), night) is None
    assert evaluate_guards(c, action(c, "alert"), night) is None
    siesta = GuardPolicy(quiet_start=time(13), quiet_end=time(15))
    assert quiet_hours_end(datetime(2026, 3, 10, 14, 0, tzinfo=UTC), "UTC", siesta) == datetime(
        2026, 3, 10, 15, 0, tzinfo=UTC
    )
    assert quiet_hours_end(datetime(2026, 3, 10, 23, 0, tzinfo=UTC), "UTC", siesta) is None


def test_hard_skips_win_over_quiet_hours() -> None:
    c = campaign(budget={"max_sends": 1})
    night = ctx(now=datetime(2026, 3, 10, 23, 0, tzinfo=UTC), campaign_sends=1)
    result = evaluate_guards(c, action(c, "message"), night)
    assert isinstance(result, Skip)
    assert result.reason == "budget_exhausted"


def test_budget_max_sends() -> None:
    c = campaign(budget={"max_sends": 10})
    assert evaluate_guards(c, action(c, "alert"), ctx(campaign_sends=9)) is None
    result = evaluate_guards(c, action(c, "alert"), ctx(campaign_sends=10))
    assert result == Skip("budget_exhausted", {"limit": "max_sends", "max_sends": 10})


def test_budget_max_coupon_value_counts_this_coupon() -> None:
    c = campaign(budget={"max_coupon_value": "100"})
    coupon = action(c, "coupon")  # 20 EUR
    assert evaluate_guards(c, coupon, ctx(campaign_coupon_value=Decimal(80))) is None
    result = evaluate_guards(c, coupon, ctx(campaign_coupon_value=Decimal("80.01")))
    assert isinstance(result, Skip)
    assert result.details["limit"] == "max_coupon_value"
    # Messages are not limited by coupon value.
    assert evaluate_guards(c, action(c, "message"), ctx(campaign_coupon_value=Decimal(100))) is None


def test_schedule_window() -> None:
    c = campaign(schedule={"starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-04-01T00:00:00Z"})
    alert = action(c, "alert")
    assert evaluate_guards(c, alert, ctx()) is None
    early = evaluate_guards(c, alert, ctx(now=datetime(2026, 2, 28, 23, 59, tzinfo=UTC)))
    assert isinstance(early, Skip)
    assert early.reason == "before_schedule"
    late = evaluate_guards(c, alert, ctx(now=datetime(2026, 4, 1, tzinfo=UTC)))
    assert isinstance(late, Skip)
    assert late.reason == "after_schedule"


def test_audience_filters() -> None:
    c = campaign(audience={"tiers": ["gold", "silver"], "segments": ["vip", "b2b"], "regions": ["EU"]})
    alert = action(c, "alert")
    fits = {"tier": "gold", "segments": ["b2b"], "region": "EU"}
    assert evaluate_guards(c, alert, ctx(**fits)) is None
    for field, value in (("tier", "bronze"), ("tier", None), ("segments", []), ("region", "US")):
        result = evaluate_guards(c, alert, ctx(**{**fits, field: value}))
        assert isinstance(result, Skip)
        assert result.reason == "audience_mismatch"


def test_no_audience_filter_matches_everyone() -> None:
    c = campaign()
    assert evaluate_guards(c, action(c, "alert"), ctx(tier=None, segments=[], region=None)) is None


def test_naive_now_is_rejected() -> None:
    c = campaign()
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate_guards(c, action(c, "alert"), ctx(now=datetime(2026, 3, 10, 12)))
