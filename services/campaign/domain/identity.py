"""One customer known under two ids: how campaign's facts about them combine when profile merges the ids.

The surviving id's own values win and the merged id only fills gaps, except where the stricter reading must
stand: a consent withdrawn under either id stays withdrawn, and an opt-out under either id opts the customer out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

# Facts where the survivor's value, if it has one, is the customer's.
_SURVIVOR_FIRST = (
    "name",
    "email",
    "phone",
    "favourite_category",
    "region",
    "timezone",
    "birthday",
    "tier",
    "stage",
    "churn_risk",
    "predicted_next_purchase_at",
)


def merged_facts(survivor: Mapping[str, Any], merged: Mapping[str, Any]) -> dict[str, Any]:
    """The survivor's facts after `merged` joined it (both as `repository.load_facts` returns them)."""
    values = {key: survivor[key] if survivor.get(key) is not None else merged.get(key) for key in _SURVIVOR_FIRST}
    values["first_purchase_at"] = earliest(survivor.get("first_purchase_at"), merged.get("first_purchase_at"))
    values["last_purchase_at"] = latest(survivor.get("last_purchase_at"), merged.get("last_purchase_at"))
    values["last_activity_at"] = latest(survivor.get("last_activity_at"), merged.get("last_activity_at"))
    values["consents"] = stricter_consents(survivor.get("consents") or {}, merged.get("consents") or {})
    values["opted_out"] = bool(survivor.get("opted_out") or merged.get("opted_out"))
    values["segments"] = list(dict.fromkeys([*(survivor.get("segments") or []), *(merged.get("segments") or [])]))
    return values


def stricter_consents(first: Mapping[str, bool], second: Mapping[str, bool]) -> dict[str, bool]:
    """Per channel: granted only if no id withdrew it; a channel only one id mentions keeps that id's answer."""
    return {
        channel: bool(first.get(channel, True)) and bool(second.get(channel, True)) for channel in {*first, *second}
    }


def earliest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return min(known) if known else None


def latest(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None
