from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from services.campaign.domain.definitions import Trigger
from services.campaign.domain.triggers import CustomerFacts, due_dates, matches, trigger_window

TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)


def trig(**fields: Any) -> Trigger:
    return TRIGGER.validate_python(fields)


# --- event-driven triggers -------------------------------------------------------------------


def test_threshold_crossed_matches_kind_and_optional_target() -> None:
    data = {"kind": "tier_up", "old": "silver", "new": "gold", "reasons": ["spend"]}
    match = matches(trig(kind="threshold_crossed", crossing="tier_up"), "threshold.crossed", data)
    assert match is not None
    assert match.kind == "threshold_crossed"
    assert match.details["new"] == "gold"
    assert matches(trig(kind="threshold_crossed", crossing="tier_up", to="gold"), "threshold.crossed", data)


@pytest.mark.parametrize(
    ("trigger", "event_type", "data"),
    [
        ({"crossing": "tier_up"}, "threshold.crossed", {"kind": "tier_down", "old": "gold", "new": "silver"}),
        ({"crossing": "tier_up", "to": "gold"}, "threshold.crossed", {"kind": "tier_up", "new": "silver"}),
        ({"crossing": "tier_up"}, "profile.updated", {"kind": "tier_up", "new": "gold"}),
    ],
)
def test_threshold_crossed_does_not_match(trigger: dict[str, Any], event_type: str, data: dict[str, Any]) -> None:
    assert matches(trig(kind="threshold_crossed", **trigger), event_type, data) is None


def test_churn_risk_matches_on_level() -> None:
    trigger = trig(kind="threshold_crossed", crossing="churn_risk_up", to="high")
    data = {"kind": "churn_risk_up", "old": 0.4, "new": 0.81, "level": "high", "reasons": ["recency"]}
    assert matches(trigger, "threshold.crossed", data) is not None
    assert matches(trigger, "threshold.crossed", {**data, "level": "medium"}) is None


def test_stage_entered() -> None:
    trigger = trig(kind="stage_entered", stage="at_risk")
    assert matches(trigger, "threshold.crossed", {"kind": "stage_changed", "old": "active", "new": "at_risk"})
    assert matches(trigger, "threshold.crossed", {"kind": "stage_changed", "old": "at_risk", "new": "at_risk"}) is None
    assert matches(trigger, "threshold.crossed", {"kind": "stage_changed", "old": "new", "new": "active"}) is None
    assert matches(trigger, "threshold.crossed", {"kind": "tier_down", "old": "active", "new": "at_risk"}) is None


def test_segment_entered() -> None:
    trigger = trig(kind="segment_entered", segment="vip")
    assert matches(trigger, "profile.updated", {"segments_entered": ["big-spender", "vip"]}) is not None
    assert matches(trigger, "profile.updated", {"segments_entered": ["big-spender"]}) is None
    assert matches(trigger, "profile.updated", {"segments_left": ["vip"]}) is None
    assert matches(trigger, "threshold.crossed", {"segments_entered": ["vip"]}) is None


def test_low_nps() -> None:
    trigger = trig(kind="low_nps")
    nps = {"score_type": "nps", "score": 6, "category": "delivery", "sentiment": "negative"}
    match = matches(trigger, "feedback.received", nps)
    assert match is not None
    assert match.details["category"] == "delivery"
    assert matches(trigger, "feedback.received", {**nps, "score": 7}) is None
    assert matches(trigger, "feedback.received", {**nps, "score_type": "csat", "score": 1}) is None
    assert matches(trigger, "feedback.received", {**nps, "score": None}) is None
    assert matches(trig(kind="low_nps", max_score=2), "feedback.received", {**nps, "score": 3}) is None


def test_loyalty_level_changed_from_own_module_and_profile_updates() -> None:
    to_gold = trig(kind="loyalty_level_changed", to="gold")
    any_change = trig(kind="loyalty_level_changed")
    assert matches(to_gold, "loyalty.level_changed", {"old": "silver", "new": "gold"}) is not None
    assert matches(to_gold, "profile.updated", {"loyalty_level": {"old": "silver", "new": "gold"}}) is not None
    assert matches(to_gold, "loyalty.level_changed", {"old": "gold", "new": "silver"}) is None
    assert matches(any_change, "loyalty.level_changed", {"old": "gold", "new": "silver"}) is not None
    assert matches(any_change, "loyalty.level_changed", {"old": "gold", "new": "gold"}) is None
    assert matches(any_change, "profile.updated", {"loyalty_level": "gold"}) is None


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "birthday"},
        {"kind": "days_after_purchase", "anchor": "last", "days": 3},
        {"kind": "replenishment_due"},
        {"kind": "inactivity", "days": 60},
    ],
)
def test_time_triggers_never_match_events(trigger: dict[str, Any]) -> None:
    assert matches(trig(**trigger), "threshold.crossed", {"kind": "tier_up", "new": "gold"}) is None


# --- time-based triggers ---------------------------------------------------------------------


def test_birthday_this_year_or_next() -> None:
    facts = CustomerFacts(birthday=date(1990, 6, 15))
    birthday = trig(kind="birthday")
    assert due_dates(birthday, facts, date(2026, 6, 1)) == [date(2026, 6, 15)]
    assert due_dates(birthday, facts, date(2026, 6, 15)) == [date(2026, 6, 15)]
    assert due_dates(birthday, facts, date(2026, 6, 16)) == [date(2027, 6, 15)]
    assert due_dates(birthday, CustomerFacts(), date(2026, 6, 1)) == []


def test_feb_29_birthday_is_feb_28_in_common_years() -> None:
    facts = CustomerFacts(birthday=date(2000, 2, 29))
    birthday = trig(kind="birthday")
    assert due_dates(birthday, facts, date(2026, 1, 1)) == [date(2026, 2, 28)]
    assert due_dates(birthday, facts, date(2028, 1, 1)) == [date(2028, 2, 29)]
    # After Feb 28 in a common year, the next one is in the following (leap) year.
    assert due_dates(birthday, facts, date(2027, 3, 1)) == [date(2028, 2, 29)]


def test_days_after_first_and_last_purchase() -> None:
    facts = CustomerFacts(first_purchase=date(2026, 1, 10), last_purchase=date(2026, 3, 1))
    today = date(2026, 3, 1)
    assert due_dates(trig(kind="days_after_purchase", anchor="last", days=3), facts, today) == [date(2026, 3, 4)]
    assert due_dates(trig(kind="days_after_purchase", anchor="first", days=90), facts, today) == [date(2026, 4, 10)]
    # Day 30 after the first purchase (Feb 9) has passed: missed sends are not backfilled.
    assert due_dates(trig(kind="days_after_purchase", anchor="first", days=30), facts, today) == []
    assert due_dates(trig(kind="days_after_purchase", anchor="last", days=3), CustomerFacts(), today) == []


def test_replenishment_is_days_before_predicted_purchase() -> None:
    facts = CustomerFacts(predicted_next_purchase=date(2026, 5, 20))
    assert due_dates(trig(kind="replenishment_due", days_before=5), facts, date(2026, 5, 1)) == [date(2026, 5, 15)]
    assert due_dates(trig(kind="replenishment_due", days_before=0), facts, date(2026, 5, 1)) == [date(2026, 5, 20)]
    assert due_dates(trig(kind="replenishment_due", days_before=5), facts, date(2026, 5, 16)) == []


def test_inactivity_counts_from_last_activity_or_purchase() -> None:
    inactive = trig(kind="inactivity", days=60)
    today = date(2026, 3, 1)
    facts = CustomerFacts(last_purchase=date(2026, 1, 1), last_activity=date(2026, 2, 1))
    assert due_dates(inactive, facts, today) == [date(2026, 4, 2)]
    assert due_dates(inactive, CustomerFacts(last_purchase=date(2026, 1, 1)), today) == [date(2026, 3, 2)]
    assert due_dates(inactive, CustomerFacts(), today) == []


def test_event_triggers_have_no_due_dates() -> None:
    facts = CustomerFacts(birthday=date(1990, 1, 1), last_purchase=date(2026, 1, 1))
    assert due_dates(trig(kind="low_nps"), facts, date(2026, 1, 1)) == []


# --- windows ---------------------------------------------------------------------------------


def test_trigger_windows() -> None:
    at = datetime(2026, 11, 20, 23, 59, tzinfo=UTC)
    assert trigger_window(trig(kind="birthday"), at) == "birthday:2026"
    assert trigger_window(trig(kind="stage_entered", stage="at_risk"), at) == "day:2026-11-20"
    assert trigger_window(trig(kind="days_after_purchase", anchor="last", days=3), at) == "day:2026-11-20"
    assert trigger_window(trig(kind="days_after_purchase", anchor="first", days=3), at) == "first-purchase"
    assert trigger_window(trig(kind="low_nps"), at) == "week:2026-W47"
    # ISO week-year differs from the calendar year around New Year.
    assert trigger_window(trig(kind="low_nps"), datetime(2027, 1, 1, tzinfo=UTC)) == "week:2026-W53"
