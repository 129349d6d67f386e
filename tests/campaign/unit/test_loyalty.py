from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.campaign.domain.loyalty import (
    LevelChange,
    LoyaltyPolicy,
    Purchase,
    level_change,
    level_for,
    points_for,
    rolling_spend,
    total_points,
)

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "points"), [(Decimal("99.99"), 99), (Decimal(100), 100), (Decimal("0.5"), 0), (Decimal(-5), 0)]
)
def test_points_are_floored(amount: Decimal, points: int) -> None:
    assert points_for(amount) == points


def test_points_rate_is_configurable() -> None:
    assert points_for(Decimal("10.5"), LoyaltyPolicy(points_per_unit=Decimal(2))) == 21


@pytest.mark.parametrize(
    ("spend", "level"),
    [
        (Decimal(0), "normal"),
        (Decimal("999.99"), "normal"),
        (Decimal(1000), "silver"),
        (Decimal("4999.99"), "silver"),
        (Decimal(5000), "gold"),
    ],
)
def test_default_levels(spend: Decimal, level: str) -> None:
    assert level_for(spend) == level


def test_thresholds_are_configurable() -> None:
    policy = LoyaltyPolicy(silver_spend=Decimal(100), gold_spend=Decimal(200))
    assert level_for(Decimal(150), policy) == "silver"
    assert level_for(Decimal(200), policy) == "gold"


def test_rolling_spend_covers_twelve_months_without_refunds_or_future() -> None:
    purchases: list[Purchase] = [
        (datetime(2025, 6, 1, tzinfo=UTC), Decimal(1000), False),  # exactly a year ago: out
        (datetime(2025, 6, 1, 0, 1, tzinfo=UTC), Decimal(300), False),  # in
        (datetime(2026, 1, 1, tzinfo=UTC), Decimal(700), False),  # in
        (datetime(2026, 2, 1, tzinfo=UTC), Decimal(5000), True),  # refunded: out
        (AS_OF, Decimal(1), False),  # at as_of: in
        (datetime(2026, 6, 2, tzinfo=UTC), Decimal(9999), False),  # future: out
    ]
    spend = rolling_spend(purchases, AS_OF)
    assert spend == Decimal(1001)
    assert level_for(spend) == "silver"


def test_rolling_spend_from_feb_29() -> None:
    purchases: list[Purchase] = [(datetime(2027, 2, 28, 12, tzinfo=UTC), Decimal(10), False)]
    assert rolling_spend(purchases, datetime(2028, 2, 29, 12, tzinfo=UTC)) == 0
    assert rolling_spend(purchases, datetime(2028, 2, 29, 11, tzinfo=UTC)) == Decimal(10)


def test_total_points_skip_refunds() -> None:
    purchases: list[Purchase] = [
        (AS_OF, Decimal("10.9"), False),
        (AS_OF, Decimal("5.9"), False),
        (AS_OF, Decimal(50), True),
    ]
    assert total_points(purchases) == 15


def test_level_change() -> None:
    assert level_change("normal", "normal") is None
    assert level_change("normal", "gold") == LevelChange("normal", "gold", "up")
    assert level_change("gold", "silver") == LevelChange("gold", "silver", "down")
