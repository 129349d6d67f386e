"""Pruning and derived fields shared by `apply` and `merge_states`.

Everything here is a pure function of the accumulated facts, so calling it after any sequence of updates yields the
same document as long as the facts themselves are order-independent.
"""

from __future__ import annotations

import itertools
import math
import statistics
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

from .state import (
    BROWSING_RETENTION_DAYS,
    BUCKET_RETENTION_DAYS,
    CLOSED_TICKET_STATUSES,
    MAX_APPLIED_EVENT_IDS,
    MAX_BROWSING_KEYS,
    MAX_PURCHASE_DATES,
    AppliedEvent,
    IntervalStats,
    ProfileState,
    Stamp,
)

_CENT = Decimal("0.0001")
K = TypeVar("K", str, date)
V = TypeVar("V")
T = TypeVar("T", str, date)


def bucket_floor(state: ProfileState) -> date | None:
    """Oldest day a bucket may have; anything older is outside every window we can be asked about."""
    if state.last_seen is None:
        return None
    return state.last_seen.date() - timedelta(days=BUCKET_RETENTION_DAYS)


def browsing_floor(state: ProfileState) -> datetime | None:
    if state.last_seen is None:
        return None
    return state.last_seen - timedelta(days=BROWSING_RETENTION_DAYS)


def newer(candidate: Stamp, current: Stamp | None) -> bool:
    return current is None or candidate.key() > current.key()


def touch_latest(mapping: dict[str, datetime], key: str, at: datetime, floor: datetime | None) -> None:
    """Record `at` as the newest time for `key`, unless it is already too old to be kept."""
    if floor is not None and at < floor:
        return
    current = mapping.get(key)
    if current is None or at > current:
        mapping[key] = at


def _in_key_order(mapping: dict[Any, Any]) -> bool:
    keys = list(mapping)
    return all(a < b for a, b in itertools.pairwise(keys))


def _sorted_by_key(mapping: dict[K, V]) -> dict[K, V]:
    """`dict(sorted(mapping.items()))`, returning `mapping` itself when it is already in key order."""
    if len(mapping) < 2 or _in_key_order(mapping):
        return mapping
    return dict(sorted(mapping.items()))


def _prune_latest(mapping: dict[str, datetime], floor: datetime | None) -> dict[str, datetime]:
    # Keeping the top-N by (time, key) is a total order, so the survivors do not depend on arrival order.
    if len(mapping) <= MAX_BROWSING_KEYS and (floor is None or not mapping or min(mapping.values()) >= floor):
        return _sorted_by_key(mapping)  # nothing to drop: the same document, without rebuilding it
    kept = [(at, key) for key, at in mapping.items() if floor is None or at >= floor]
    kept.sort(reverse=True)
    return {key: at for at, key in sorted(kept[:MAX_BROWSING_KEYS], key=lambda pair: pair[1])}


def interval_stats(dates: list[date]) -> IntervalStats:
    gaps = [float((later - earlier).days) for earlier, later in itertools.pairwise(dates)]
    if not gaps:
        return IntervalStats()
    # Plain float arithmetic: statistics.pstdev works in exact fractions and cost more than the rest of `apply`.
    mean = math.fsum(gaps) / len(gaps)
    return IntervalStats(
        count=len(gaps),
        mean_days=mean,
        median_days=float(statistics.median(gaps)),
        std_days=math.sqrt(math.fsum((gap - mean) ** 2 for gap in gaps) / len(gaps)),
    )


def merge_purchase_dates(*lists: list[date]) -> list[date]:
    distinct = sorted({day for dates in lists for day in dates})
    return distinct[-MAX_PURCHASE_DATES:]


def merge_applied(*lists: list[AppliedEvent]) -> list[AppliedEvent]:
    # Reuses the existing models: rebuilding up to 200 of them per save was a tenth of the consumer's CPU.
    distinct: dict[tuple[datetime, str], AppliedEvent] = {}
    for items in lists:
        for item in items:
            distinct.setdefault((item.at, item.id), item)
    return [distinct[key] for key in sorted(distinct)[-MAX_APPLIED_EVENT_IDS:]]


def _set(model: BaseModel, name: str, value: Any) -> None:
    # Assigning through pydantic costs a few microseconds; most normalised fields are already as they should be.
    if getattr(model, name) is not value:
        setattr(model, name, value)


def _sorted_unique(values: list[T]) -> list[T]:
    """`sorted(set(values))`, returning `values` itself when it already is that."""
    if all(a < b for a, b in itertools.pairwise(values)):
        return values
    return sorted(set(values))


def normalise(state: ProfileState) -> None:
    """Prune windows and recompute derived fields in place (callers own a private copy)."""
    floor_day = bucket_floor(state)
    days = state.days
    if days and (floor_day is None or min(days) >= floor_day):
        _set(state, "days", _sorted_by_key(days))
    else:
        state.days = {day: bucket for day, bucket in sorted(days.items()) if floor_day is None or day >= floor_day}
    for bucket in state.days.values():
        _set(bucket, "logins", _sorted_by_key(bucket.logins))

    floor = browsing_floor(state)
    browsing = state.browsing
    _set(browsing, "skus_viewed", _prune_latest(browsing.skus_viewed, floor))
    _set(browsing, "categories_viewed", _prune_latest(browsing.categories_viewed, floor))
    _set(browsing, "skus_bought", _prune_latest(browsing.skus_bought, floor))
    _set(browsing, "categories_bought", _prune_latest(browsing.categories_bought, floor))

    orders = state.orders
    average = (orders.total_spend / orders.count).quantize(_CENT) if orders.count else None
    if average is None or orders.average_spend is None or str(average) != str(orders.average_spend):
        orders.average_spend = average
    _set(orders, "categories", _sorted_by_key(orders.categories))
    _set(orders, "currencies", _sorted_unique(orders.currencies))
    dates = orders.purchase_dates
    if len(dates) > MAX_PURCHASE_DATES or not all(a < b for a, b in itertools.pairwise(dates)):
        orders.purchase_dates = dates = merge_purchase_dates(dates)
    intervals = interval_stats(dates)
    if intervals != orders.intervals:
        orders.intervals = intervals

    _set(state.logins, "channels", _sorted_by_key(state.logins.channels))

    tickets = state.tickets
    if tickets.items:
        _set(tickets, "items", _sorted_by_key(tickets.items))
        open_ids = [tid for tid, t in tickets.items.items() if t.status not in CLOSED_TICKET_STATUSES]
        if open_ids != tickets.open_ids:
            tickets.open_ids = open_ids
        if tickets.open_count != len(open_ids):
            tickets.open_count = len(open_ids)
        if tickets.closed_count != len(tickets.items) - len(open_ids):
            tickets.closed_count = len(tickets.items) - len(open_ids)
        last_id, last = max(tickets.items.items(), key=lambda pair: (pair[1].opened_at, pair[0]))
        tickets.last_ticket_id = last_id
        tickets.last_ticket_at = last.opened_at
        tickets.last_ticket_priority = last.priority
    elif tickets.open_ids or tickets.open_count or tickets.closed_count or tickets.last_ticket_id is not None:
        tickets.open_ids = []
        tickets.open_count = tickets.closed_count = 0
        tickets.last_ticket_id = tickets.last_ticket_at = tickets.last_ticket_priority = None
    elif tickets.last_ticket_at is not None or tickets.last_ticket_priority is not None:
        tickets.last_ticket_at = tickets.last_ticket_priority = None

    _set(state, "consents", _sorted_by_key(state.consents))
    _set(state.coupons, "redeemed", _sorted_unique(state.coupons.redeemed))
    _set(state, "tags", _sorted_unique(state.tags))
    _set(state, "stamps", _sorted_by_key(state.stamps))
    applied = state.applied_events
    if len(applied) > MAX_APPLIED_EVENT_IDS or not all(
        (a.at, a.id) < (b.at, b.id) for a, b in itertools.pairwise(applied)
    ):
        state.applied_events = merge_applied(applied)
    _set(state, "merged_from", _sorted_unique(state.merged_from))
