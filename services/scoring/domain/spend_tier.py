"""The foundation's simple value tier: a spend rule, until the RFM/CLV models take over."""

from __future__ import annotations

from typing import Literal

Tier = Literal["low", "medium", "high"]
TIER_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}
HIGH_SPEND = 1000.0
MEDIUM_SPEND = 200.0


def tier_for_spend(total_spend: float) -> Tier:
    if total_spend >= HIGH_SPEND:
        return "high"
    if total_spend >= MEDIUM_SPEND:
        return "medium"
    return "low"


def tier_crossing(old: str | None, new: str) -> str | None:
    """`tier_up` / `tier_down`, or None when nothing was crossed (a first score is a crossing from low)."""
    before = TIER_ORDER.get(old or "low", 0)
    after = TIER_ORDER[new]
    if after > before:
        return "tier_up"
    if after < before:
        return "tier_down"
    return None
