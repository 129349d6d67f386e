"""Derived events as tests post them: valid against their contract (libs.common.contracts), naming only what a
test is about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from libs.common.envelope import CloudEvent

# What the contract of a derived event requires besides what a test is about: a test names only the fields that
# matter to it, and the event it posts is still a valid one (a consumer dead-letters any other).
_REQUIRED: dict[str, dict[str, Any]] = {
    "profile.updated": {"cause": {"id": "ev-cause", "type": "purchase"}, "changed": [], "metrics": {}},
    "score.changed": {
        "tier": "low",
        "stage": "active",
        "churn_risk": None,
        "reasons": [],
        "clv": None,
        "value": {"code": "value", "message": "value"},
        "total_spend": "0",
        "expected_purchases_30d": None,
        "expected_purchases_90d": None,
        "predicted_next_purchase_at": None,
        "model_version": None,
        "rfm": {"r": 1, "f": 1, "m": 1, "score": 1.0, "code": "111"},
    },
    "threshold.crossed": {"old": None, "reasons": []},
    "feedback.received": {"sentiment": "neutral"},
    "sla.breached": {"tier": "standard", "priority": "normal", "target_s": 3600, "elapsed_s": 3601},
}


def complete(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with the fields its contract requires and the test leaves out."""
    return {**_REQUIRED.get(type_, {}), **data}


# A Tuesday noon UTC: outside quiet hours in UTC, so only tests that want quiet hours meet them.
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
_ids = itertools.count()


class Clock:
    """The clock a harness injects: a test moves time by setting `now`."""

    def __init__(self, now: datetime = NOON) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def derived_event(
    type_: str, customer: str, data: dict[str, Any], at: datetime = NOON, event_id: str | None = None
) -> CloudEvent:
    """A derived event as a consumer receives it, completed to a valid one of its contract."""
    return CloudEvent(
        id=event_id or f"ev-{next(_ids)}",
        source="test",
        type=type_,
        subject=customer,
        time=at,
        data=complete(type_, data),
    )
