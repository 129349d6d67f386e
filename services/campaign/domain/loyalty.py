"""Loyalty points and levels, computed from purchases as of a given time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Literal

Level = Literal["normal", "silver", "gold"]
LEVEL_ORDER: tuple[Level, ...] = ("normal", "silver", "gold")

# (time, amount, refunded?)
Purchase = tuple[datetime, Decimal, bool]


@dataclass(frozen=True)
class LoyaltyPolicy:
    points_per_unit: Decimal = Decimal(1)
    silver_spend: Decimal = Decimal(1000)
    gold_spend: Decimal = Decimal(5000)


DEFAULT_POLICY = LoyaltyPolicy()


@dataclass(frozen=True)
class LevelChange:
    old: Level
    new: Level
    direction: Literal["up", "down"]


def points_for(amount: Decimal, policy: LoyaltyPolicy = DEFAULT_POLICY) -> int:
    """Points earned by one purchase; rounded down so partial units never round up to a point."""
    if amount <= 0:
        return 0
    return int((amount * policy.points_per_unit).to_integral_value(rounding=ROUND_FLOOR))


def level_for(spend: Decimal, policy: LoyaltyPolicy = DEFAULT_POLICY) -> Level:
    if spend >= policy.gold_spend:
        return "gold"
    if spend >= policy.silver_spend:
        return "silver"
    return "normal"


def _year_before(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year - 1)
    except ValueError:  # Feb 29 -> Feb 28 of the previous (common) year
        return moment.replace(year=moment.year - 1, day=28)


def rolling_spend(purchases: Iterable[Purchase], as_of: datetime) -> Decimal:
    """Spend in the 12 calendar months up to `as_of`: (as_of - 1 year, as_of], refunds excluded.

    Purchases after `as_of` are ignored so that replaying history gives the answer of that time.
    """
    since = _year_before(as_of)
    return sum(
        (amount for at, amount, refunded in purchases if not refunded and since < at <= as_of),
        Decimal(0),
    )


def level_change(old: Level, new: Level) -> LevelChange | None:
    if old == new:
        return None
    direction: Literal["up", "down"] = "up" if LEVEL_ORDER.index(new) > LEVEL_ORDER.index(old) else "down"
    return LevelChange(old, new, direction)


def total_points(purchases: Iterable[Purchase], policy: LoyaltyPolicy = DEFAULT_POLICY) -> int:
    """Points per purchase summed (floor applied per purchase); refunded purchases earn none."""
    return sum(points_for(amount, policy) for _, amount, refunded in purchases if not refunded)
