"""Deciding when a campaign fires.

Event-driven triggers are matched against incoming CloudEvents (`matches`). Time-based
triggers cannot be matched against an event, because their moment is "nothing happened";
instead `due_dates` turns the customer's facts into dates that a scheduler stores as
"fire at" rows and replays when the clock (wall or event time) reaches them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.campaign.domain.definitions import (
    BirthdayTrigger,
    DaysAfterPurchaseTrigger,
    InactivityTrigger,
    LowNpsTrigger,
    LoyaltyLevelChangedTrigger,
    ReplenishmentDueTrigger,
    SegmentEnteredTrigger,
    StageEnteredTrigger,
    ThresholdCrossedTrigger,
    Trigger,
)

THRESHOLD_CROSSED = "threshold.crossed"
PROFILE_UPDATED = "profile.updated"
FEEDBACK_RECEIVED = "feedback.received"
# Emitted inside the campaign service by its own loyalty module (never on Kafka from elsewhere).
LOYALTY_LEVEL_CHANGED = "loyalty.level_changed"


@dataclass(frozen=True)
class TriggerMatch:
    kind: str
    # What made it fire (old/new values, score, segment); kept on the send record for audit.
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerFacts:
    """What a scheduler knows about a customer; None where unknown."""

    birthday: date | None = None
    first_purchase: date | None = None
    last_purchase: date | None = None
    predicted_next_purchase: date | None = None
    last_activity: date | None = None


def _loyalty_change(event_type: str, data: Mapping[str, Any]) -> tuple[Any, Any] | None:
    # Accepted shapes: our own `loyalty.level_changed` {old, new}, or a profile.updated carrying
    # `loyalty_level: {old, new}`. A plain string there is a current value, not a change.
    if event_type == LOYALTY_LEVEL_CHANGED:
        return data.get("old"), data.get("new")
    if event_type == PROFILE_UPDATED:
        change = data.get("loyalty_level")
        if isinstance(change, Mapping):
            return change.get("old"), change.get("new")
    return None


def _threshold(trigger: ThresholdCrossedTrigger, event_type: str, data: Mapping[str, Any]) -> TriggerMatch | None:
    if event_type != THRESHOLD_CROSSED or data.get("kind") != trigger.crossing:
        return None
    if trigger.to is not None and trigger.to not in (data.get("new"), data.get("level")):
        return None
    details = {key: data.get(key) for key in ("old", "new", "level", "reasons")}
    return TriggerMatch(trigger.kind, {"crossing": trigger.crossing, **details})


def _stage(trigger: StageEnteredTrigger, event_type: str, data: Mapping[str, Any]) -> TriggerMatch | None:
    if event_type != THRESHOLD_CROSSED or data.get("kind") != "stage_changed":
        return None
    # Re-announcing the same stage is not "entering" it.
    if data.get("new") != trigger.stage or data.get("old") == trigger.stage:
        return None
    return TriggerMatch(trigger.kind, {"old": data.get("old"), "new": data.get("new")})


def _segment(trigger: SegmentEnteredTrigger, event_type: str, data: Mapping[str, Any]) -> TriggerMatch | None:
    entered = data.get("segments_entered") if event_type == PROFILE_UPDATED else None
    if not isinstance(entered, list | tuple) or trigger.segment not in entered:
        return None
    return TriggerMatch(trigger.kind, {"segment": trigger.segment})


def _low_nps(trigger: LowNpsTrigger, event_type: str, data: Mapping[str, Any]) -> TriggerMatch | None:
    if event_type != FEEDBACK_RECEIVED or data.get("score_type") != "nps":
        return None
    score = data.get("score")
    # bool is an int subclass; a stray `true` must not read as a score of 1.
    if isinstance(score, bool) or not isinstance(score, int | float) or score > trigger.max_score:
        return None
    details = {key: data.get(key) for key in ("score", "category", "sentiment")}
    return TriggerMatch(trigger.kind, details)


def _loyalty(trigger: LoyaltyLevelChangedTrigger, event_type: str, data: Mapping[str, Any]) -> TriggerMatch | None:
    change = _loyalty_change(event_type, data)
    if change is None:
        return None
    old, new = change
    if new is None or old == new or (trigger.to is not None and new != trigger.to):
        return None
    return TriggerMatch(trigger.kind, {"old": old, "new": new})


def matches(trigger: Trigger, event_type: str, event_data: Mapping[str, Any]) -> TriggerMatch | None:
    """Return a match if this event fires this (event-driven) trigger; time triggers never match."""
    if isinstance(trigger, ThresholdCrossedTrigger):
        return _threshold(trigger, event_type, event_data)
    if isinstance(trigger, StageEnteredTrigger):
        return _stage(trigger, event_type, event_data)
    if isinstance(trigger, SegmentEnteredTrigger):
        return _segment(trigger, event_type, event_data)
    if isinstance(trigger, LowNpsTrigger):
        return _low_nps(trigger, event_type, event_data)
    if isinstance(trigger, LoyaltyLevelChangedTrigger):
        return _loyalty(trigger, event_type, event_data)
    return None


def _birthday_in(year: int, birthday: date) -> date:
    # Feb 29 birthdays are celebrated on Feb 28 in common years: before the day passes, not after.
    try:
        return birthday.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def due_dates(trigger: Trigger, facts: CustomerFacts, today: date) -> list[date]:
    """Dates on or after `today` when a time-based trigger fires; [] if unknown or already past.

    Past dates are dropped rather than fired late: a "3 days after purchase" mail a month late
    does more harm than good. The scheduler recomputes on every fact change, so a newer
    purchase simply yields a new date (and a new idempotency window).
    """
    due: date | None = None
    if isinstance(trigger, BirthdayTrigger):
        if facts.birthday is None:
            return []
        due = _birthday_in(today.year, facts.birthday)
        if due < today:
            due = _birthday_in(today.year + 1, facts.birthday)
    elif isinstance(trigger, DaysAfterPurchaseTrigger):
        anchor = facts.first_purchase if trigger.anchor == "first" else facts.last_purchase
        due = None if anchor is None else anchor + timedelta(days=trigger.days)
    elif isinstance(trigger, ReplenishmentDueTrigger):
        predicted = facts.predicted_next_purchase
        due = None if predicted is None else predicted - timedelta(days=trigger.days_before)
    elif isinstance(trigger, InactivityTrigger):
        last = facts.last_activity or facts.last_purchase
        due = None if last is None else last + timedelta(days=trigger.days)
    if due is None or due < today:
        return []
    return [due]


def trigger_window(trigger: Trigger, event_time: datetime) -> str:
    """The occurrence a send belongs to, for the idempotency key (one send per window).

    `event_time` is the event's time for event triggers and the fire-at time for time triggers.
    """
    day = event_time.date()
    if isinstance(trigger, BirthdayTrigger):
        return f"birthday:{day.year}"
    if isinstance(trigger, DaysAfterPurchaseTrigger) and trigger.anchor == "first":
        # There is only one first purchase, so this campaign can reach a customer only once.
        return "first-purchase"
    if isinstance(trigger, LowNpsTrigger):
        # Several low scores in one week (e.g. per ticket surveys) deserve one apology, not several.
        iso = day.isocalendar()
        return f"week:{iso.year}-W{iso.week:02d}"
    return f"day:{day.isoformat()}"
