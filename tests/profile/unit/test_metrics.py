from __future__ import annotations

import pytest

from services.profile.domain import ProfileEvent, derived_metrics, ratio_30_90, windows

from .helpers import build, ev, t

AS_OF = t("2024-06-30T18:00")  # last 30 days = [06-01, 06-30], baseline = [03-03, 05-31]


def _history() -> list[ProfileEvent]:
    baseline_logins = ["2024-03-10", "2024-03-20", "2024-04-10", "2024-04-20", "2024-05-10", "2024-05-20"]
    events = [ev("first", "login", "2023-10-01", channel="web")]
    events += [ev(f"l{i}", "login", day, channel="web") for i, day in enumerate(baseline_logins)]
    events += [ev("l-recent", "login", "2024-06-15", channel="app")]
    events += [
        ev(f"p{i}", "purchase", day, order_id=f"o{i}", amount="30", currency="USD")
        for i, day in enumerate(["2024-03-15", "2024-04-15", "2024-05-15"])
    ]
    return events


def test_baseline_ratios_hand_example() -> None:
    state = build(_history())
    w = windows(state, AS_OF)
    assert (w.logins_30d, w.logins_baseline, w.logins_90d) == (1, 6, 5)
    assert w.logins_30d_by_channel == {"app": 1}
    assert (w.purchases_30d, w.purchases_baseline) == (0, 3)
    assert w.baseline_days == 90
    m = derived_metrics(state, AS_OF)
    # 1 login vs 6 / 3 = 2 per 30 days.
    assert m["login_ratio_30_90"] == 0.5
    assert m["purchase_ratio_30_90"] == 0.0
    assert m["spend_ratio_30_90"] == 0.0
    assert m["logins_30d"] == 1
    assert m["logins_90d"] == 5


def test_ratio_is_none_without_baseline() -> None:
    state = build([ev("x", "login", "2024-06-20")])
    m = derived_metrics(state, AS_OF)
    assert m["login_ratio_30_90"] is None  # history starts inside the recent window
    assert m["purchase_ratio_30_90"] is None
    assert ratio_30_90(3, 0) is None
    assert ratio_30_90(3, 9) == 1.0
    assert ratio_30_90(3, 9, baseline_days=29) is None


def test_windows_ignore_events_after_as_of() -> None:
    state = build([*_history(), ev("future", "login", "2024-07-05", channel="web")])
    assert windows(state, AS_OF).logins_30d == 1
    assert windows(state, t("2024-07-05")).logins_30d == 2


def test_interval_stats_median_and_std() -> None:
    state = build(
        [
            ev(f"p{i}", "purchase", day, order_id=f"o{i}", amount="1", currency="USD")
            for i, day in enumerate(["2024-01-01", "2024-01-03", "2024-01-03T15:00", "2024-01-09", "2024-01-19"])
        ]
    )
    # Distinct days 01, 03, 09, 19 -> gaps 2, 6, 10.
    intervals = state.orders.intervals
    assert intervals.count == 3
    assert intervals.mean_days == 6.0
    assert intervals.median_days == 6.0
    assert intervals.std_days == pytest.approx((32 / 3) ** 0.5)
    assert derived_metrics(state, t("2024-02-01"))["typical_interval_days"] == 6.0
