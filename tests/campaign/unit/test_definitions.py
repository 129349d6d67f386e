from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.campaign.domain.definitions import (
    HOLDOUT,
    CampaignDefinition,
    CouponAction,
    MessageAction,
    ThresholdCrossedTrigger,
)


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "Win back",
        "trigger": {"kind": "threshold_crossed", "crossing": "churn_risk_up", "to": "high"},
        "actions": [{"type": "message", "channel": "sms", "body": "Hi {name}, we miss you"}],
    }
    base.update(overrides)
    return base


def error_locs(payload: dict[str, Any]) -> list[tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as info:
        CampaignDefinition.model_validate(payload)
    return [tuple(error["loc"]) for error in info.value.errors()]


def test_valid_definition_parses_discriminated_unions() -> None:
    campaign = CampaignDefinition.model_validate(
        body(
            actions=[
                {"type": "coupon", "kind": "amount", "value": "10", "currency": "EUR"},
                {"type": "message", "channel": "email", "subject": "For you, {name}", "body": "{points} points"},
                {"type": "alert", "channel": "webhook", "message": "{name} is at risk"},
            ],
            budget={"max_sends": 100},
            variants=[{"name": "a", "weight": 2}, {"name": "b"}],
            holdout_percent=10,
        )
    )
    assert isinstance(campaign.trigger, ThresholdCrossedTrigger)
    assert isinstance(campaign.actions[0], CouponAction)
    assert isinstance(campaign.actions[1], MessageAction)
    assert campaign.status == "draft"
    assert campaign.actions_for(HOLDOUT) == []
    assert campaign.actions_for("a") == campaign.actions


@pytest.mark.parametrize(
    ("trigger", "loc"),
    [
        ({"kind": "threshold_crossed", "crossing": "sideways"}, ("trigger", "threshold_crossed", "crossing")),
        ({"kind": "stage_entered", "stage": "asleep"}, ("trigger", "stage_entered", "stage")),
        ({"kind": "segment_entered", "segment": ""}, ("trigger", "segment_entered", "segment")),
        ({"kind": "days_after_purchase", "anchor": "first", "days": 0}, ("trigger", "days_after_purchase", "days")),
        ({"kind": "days_after_purchase", "anchor": "first", "days": 366}, ("trigger", "days_after_purchase", "days")),
        ({"kind": "days_after_purchase", "anchor": "middle", "days": 3}, ("trigger", "days_after_purchase", "anchor")),
        ({"kind": "replenishment_due", "days_before": -1}, ("trigger", "replenishment_due", "days_before")),
        ({"kind": "inactivity", "days": 0}, ("trigger", "inactivity", "days")),
        ({"kind": "low_nps", "max_score": 11}, ("trigger", "low_nps", "max_score")),
        ({"kind": "loyalty_level_changed", "to": "platinum"}, ("trigger", "loyalty_level_changed", "to")),
        ({"kind": "full_moon"}, ("trigger",)),
    ],
)
def test_trigger_errors_name_the_field(trigger: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert loc in error_locs(body(trigger=trigger))


@pytest.mark.parametrize("days", [3, 30, 90, 1, 365])
def test_days_after_purchase_accepts_any_day_within_a_year(days: int) -> None:
    campaign = CampaignDefinition.model_validate(
        body(trigger={"kind": "days_after_purchase", "anchor": "last", "days": days})
    )
    assert campaign.trigger.kind == "days_after_purchase"


def test_low_nps_defaults_to_detractors() -> None:
    campaign = CampaignDefinition.model_validate(body(trigger={"kind": "low_nps"}))
    assert campaign.trigger.model_dump() == {"kind": "low_nps", "max_score": 6}


@pytest.mark.parametrize(
    ("action", "loc"),
    [
        ({"type": "coupon", "kind": "percent", "value": 101}, ("actions", 0, "coupon", "value")),
        ({"type": "coupon", "kind": "percent", "value": 0}, ("actions", 0, "coupon", "value")),
        ({"type": "coupon", "kind": "amount", "value": 5}, ("actions", 0, "coupon", "currency")),
        ({"type": "coupon", "kind": "amount", "value": 5, "currency": "usd"}, ("actions", 0, "coupon", "currency")),
        ({"type": "alert", "channel": "sms", "message": "x"}, ("actions", 0, "alert", "channel")),
        ({"type": "alert", "message": "{manager}"}, ("actions", 0, "alert", "message")),
        ({"type": "message", "channel": "fax", "body": "x"}, ("actions", 0, "message", "channel")),
        ({"type": "message", "channel": "sms", "body": "Hi {nickname}"}, ("actions", 0, "message", "body")),
        ({"type": "message", "channel": "sms", "body": "Hi {name.__class__}"}, ("actions", 0, "message", "body")),
        ({"type": "message", "channel": "sms", "body": "Hi {name!r}"}, ("actions", 0, "message", "body")),
        ({"type": "message", "channel": "email", "body": "x"}, ("actions", 0, "message", "subject")),
        (
            {"type": "message", "channel": "email", "subject": "{oops}", "body": "x"},
            ("actions", 0, "message", "subject"),
        ),
        ({"type": "teleport"}, ("actions", 0)),
    ],
)
def test_action_errors_name_the_field(action: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    assert loc in error_locs(body(actions=[action]))


def test_unknown_placeholder_message_lists_it() -> None:
    with pytest.raises(ValidationError) as info:
        CampaignDefinition.model_validate(
            body(actions=[{"type": "message", "channel": "sms", "body": "{name} {favorite_category}"}])
        )
    assert "{favorite_category}" in info.value.errors()[0]["msg"]


def test_actions_must_not_be_empty() -> None:
    assert ("actions",) in error_locs(body(actions=[]))


def test_schedule_end_must_follow_start() -> None:
    schedule = {"starts_at": "2026-03-01T00:00:00Z", "ends_at": "2026-03-01T00:00:00Z"}
    assert ("schedule", "ends_at") in error_locs(body(schedule=schedule))


def test_schedule_needs_aware_datetimes() -> None:
    assert ("schedule", "starts_at") in error_locs(body(schedule={"starts_at": "2026-03-01T00:00:00"}))


@pytest.mark.parametrize(
    ("budget", "loc"),
    [
        ({"max_sends": 0}, ("budget", "max_sends")),
        ({"max_coupon_value": 0}, ("budget", "max_coupon_value")),
        ({}, ("budget", "max_coupon_value")),
    ],
)
def test_budget_errors(budget: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert loc in error_locs(body(budget=budget))


def test_ab_settings_are_validated() -> None:
    assert ("holdout_percent",) in error_locs(body(holdout_percent=51))
    assert ("variants",) in error_locs(body(variants=[{"name": "a"}, {"name": "a"}]))
    assert ("variants", 0, "name") in error_locs(body(variants=[{"name": "holdout"}]))
    assert ("variants", 0, "weight") in error_locs(body(variants=[{"name": "a", "weight": 0}]))
    assert ("conversion_window_days",) in error_locs(body(conversion_window_days=0))


def test_unknown_keys_are_rejected_by_name() -> None:
    assert ("max_send",) in [loc[-1:] for loc in error_locs(body(budget={"max_send": 3}))]
    assert ("status",) in error_locs(body(status="archived"))


def test_variant_action_override() -> None:
    campaign = CampaignDefinition.model_validate(
        body(variants=[{"name": "coupon", "actions": [{"type": "coupon", "kind": "percent", "value": 10}]}])
    )
    (override,) = campaign.actions_for("coupon")
    assert isinstance(override, CouponAction)
    assert campaign.actions_for("unknown") == campaign.actions
