"""Own-baseline metrics computed from a profile as of a given time (no wall clock: `as_of` is passed in).

Windows are whole UTC days ending with the day of `as_of`: last 30 days = [D-29, D], last 90 = [D-89, D] and the
baseline = the 90 days before the last 30, [D-119, D-30]. Comparing a customer with their own past detects change
independently of how active customers are in general.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .derive import bucket_floor
from .event import utc
from .state import ProfileState

RECENT_DAYS = 30
BASELINE_DAYS = 90
# A baseline shorter than one recent window says more about noise than about the customer.
MIN_BASELINE_DAYS = 30
# Window offsets from the `as_of` day, built once (a timedelta costs more to build than to subtract).
_RECENT_OFFSET = timedelta(days=RECENT_DAYS - 1)
_NINETY_OFFSET = timedelta(days=BASELINE_DAYS - 1)
_BASELINE_OFFSET = timedelta(days=RECENT_DAYS + BASELINE_DAYS - 1)
_BASELINE_END_OFFSET = timedelta(days=RECENT_DAYS)


@dataclass(frozen=True, slots=True)
class Windows:
    logins_30d: int = 0
    logins_90d: int = 0
    logins_baseline: int = 0
    logins_30d_by_channel: dict[str, int] = field(default_factory=dict)
    logins_90d_by_channel: dict[str, int] = field(default_factory=dict)
    purchases_30d: int = 0
    purchases_baseline: int = 0
    spend_30d: Decimal = Decimal(0)
    spend_baseline: Decimal = Decimal(0)
    # Days of the baseline window the profile's history actually covers (0..90).
    baseline_days: int = 0


def _baseline_coverage(state: ProfileState, day: date) -> int:
    if state.first_seen is None:
        return 0
    end = day - _BASELINE_END_OFFSET
    # The baseline only counts from when we knew the customer and from the oldest bucket still kept.
    start = max(day - _BASELINE_OFFSET, state.first_seen.date())
    floor = bucket_floor(state)
    if floor is not None:
        start = max(start, floor)
    return max(0, min(BASELINE_DAYS, (end - start).days + 1))


def windows(state: ProfileState, as_of: datetime) -> Windows:
    day = utc(as_of).date()
    recent_start = day - _RECENT_OFFSET
    ninety_start = day - _NINETY_OFFSET
    baseline_start = day - _BASELINE_OFFSET
    logins_30: dict[str, int] = {}
    logins_90: dict[str, int] = {}
    logins_baseline = purchases_30 = purchases_baseline = 0
    spend_30 = spend_baseline = Decimal(0)
    # One pass per bucket; spend is only added where there were purchases (the only writer of both), which saves
    # most Decimal additions without changing a sum.
    for bucket_day, bucket in state.days.items():
        if bucket_day > day or bucket_day < baseline_start:
            continue
        logins = bucket.logins
        if bucket_day >= recent_start:
            for channel, count in logins.items():
                logins_30[channel] = logins_30.get(channel, 0) + count
                logins_90[channel] = logins_90.get(channel, 0) + count
            if bucket.purchases:
                purchases_30 += bucket.purchases
                spend_30 += bucket.spend
            continue
        if logins:
            logins_baseline += sum(logins.values())
            if bucket_day >= ninety_start:
                for channel, count in logins.items():
                    logins_90[channel] = logins_90.get(channel, 0) + count
        if bucket.purchases:
            purchases_baseline += bucket.purchases
            spend_baseline += bucket.spend
    return Windows(
        logins_30d=sum(logins_30.values()),
        logins_90d=sum(logins_90.values()),
        logins_baseline=logins_baseline,
        logins_30d_by_channel=dict(sorted(logins_30.items())) if len(logins_30) > 1 else logins_30,
        logins_90d_by_channel=dict(sorted(logins_90.items())) if len(logins_90) > 1 else logins_90,
        purchases_30d=purchases_30,
        purchases_baseline=purchases_baseline,
        spend_30d=spend_30,
        spend_baseline=spend_baseline,
        baseline_days=_baseline_coverage(state, day),
    )


def ratio_30_90(recent: float | Decimal, baseline: float | Decimal, baseline_days: int = BASELINE_DAYS) -> float | None:
    """last30 / (baseline per 30 days); with a full 90-day baseline that is last30 / (prev90 / 3).

    None when the baseline is zero or covers fewer than MIN_BASELINE_DAYS: there is nothing to compare with.
    A partly covered baseline is scaled by the days it covers rather than treated as zero activity.
    """
    if baseline_days < MIN_BASELINE_DAYS or baseline <= 0:
        return None
    per_30 = float(baseline) / baseline_days * RECENT_DAYS
    return float(recent) / per_30


def viewed_not_bought(state: ProfileState, as_of: datetime, days: int = RECENT_DAYS) -> tuple[list[str], list[str]]:
    """(skus, categories) viewed in the `days` before `as_of` and not bought in that same period.

    Only the newest view/purchase time per key is kept, so with an `as_of` older than the newest events a key
    viewed again after `as_of` is missed; live scoring uses `as_of` >= the newest event, where this is exact.
    """
    end = utc(as_of)
    start = end - timedelta(days=days)

    def in_window(at: datetime | None) -> bool:
        return at is not None and start < at <= end

    browsing = state.browsing
    skus = [k for k, at in browsing.skus_viewed.items() if in_window(at) and not in_window(browsing.skus_bought.get(k))]
    categories = [
        k
        for k, at in browsing.categories_viewed.items()
        if in_window(at) and not in_window(browsing.categories_bought.get(k))
    ]
    return sorted(skus), sorted(categories)


def favourite_category(state: ProfileState) -> str | None:
    """Most orders, then most spend, then alphabetical: frequency reflects habit better than one big basket."""
    categories = state.orders.categories
    if not categories:
        return None
    return min(categories.items(), key=lambda pair: (-pair[1].orders, -pair[1].spend, pair[0]))[0]


def _days_since(at: datetime | None, as_of: datetime) -> float | None:
    return None if at is None else (as_of - at).total_seconds() / 86_400


def _same(moment: datetime | None) -> Any:
    return moment


def metric_values(
    state: ProfileState,
    as_of: datetime,
    moment: Callable[[datetime | None], Any],
    money: Callable[[Decimal], Any] = float,
) -> dict[str, Any]:
    """`derived_metrics` with every datetime passed through `moment` and every amount through `money`, so a JSON
    view needs no second walk."""
    as_of = utc(as_of)
    w = windows(state, as_of)
    orders, refunds, logins, intervals = state.orders, state.refunds, state.logins, state.orders.intervals
    tickets, feedback = state.tickets, state.feedback
    return {
        "customer_id": state.customer_id,
        "purchase_count": orders.count,
        "total_spend": money(orders.total_spend),
        "average_spend": None if orders.average_spend is None else money(orders.average_spend),
        "net_spend": money(orders.total_spend - refunds.amount),
        "first_purchase_at": moment(orders.first_purchase_at),
        "last_purchase_at": moment(orders.last_purchase_at),
        "days_since_last_purchase": _days_since(orders.last_purchase_at, as_of),
        "typical_interval_days": intervals.median_days,
        "mean_interval_days": intervals.mean_days,
        "interval_std_days": intervals.std_days,
        "interval_count": intervals.count,
        "refund_count": refunds.count,
        "refund_amount": money(refunds.amount),
        "login_count": logins.count,
        "last_login_at": moment(logins.last_login_at),
        "days_since_last_login": _days_since(logins.last_login_at, as_of),
        "logins_30d": w.logins_30d,
        "logins_90d": w.logins_90d,
        "logins_30d_by_channel": w.logins_30d_by_channel,
        "logins_90d_by_channel": w.logins_90d_by_channel,
        "purchases_30d": w.purchases_30d,
        "spend_30d": money(w.spend_30d),
        "baseline_days": w.baseline_days,
        "login_ratio_30_90": ratio_30_90(w.logins_30d, w.logins_baseline, w.baseline_days),
        "purchase_ratio_30_90": ratio_30_90(w.purchases_30d, w.purchases_baseline, w.baseline_days),
        "spend_ratio_30_90": ratio_30_90(w.spend_30d, w.spend_baseline, w.baseline_days),
        "open_tickets": tickets.open_count,
        "last_ticket_priority": tickets.last_ticket_priority,
        "last_nps": feedback.last_nps,
        "last_csat": feedback.last_csat,
        "favourite_category": favourite_category(state),
        "region": state.attributes.region,
        "tags": list(state.tags),
    }


def derived_metrics(state: ProfileState, as_of: datetime) -> dict[str, Any]:
    """Everything scoring needs, as plain JSON-friendly values (money as float, times as aware datetimes)."""
    return metric_values(state, as_of, _same)
