"""Pruning and derived fields shared by `apply` and `merge_states`.

Everything here is a pure function of the accumulated facts, so calling it after any sequence of updates yields the
same document as long as the facts themselves are order-independent.
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Callable
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
    Orders,
    ProfileState,
    Stamp,
)

_CENT = Decimal("0.0001")
K = TypeVar("K", str, date)
V = TypeVar("V")
T = TypeVar("T", str, date)


# Built once: constructing a timedelta costs more than the subtraction it is used for.
_BUCKET_RETENTION = timedelta(days=BUCKET_RETENTION_DAYS)
_BROWSING_RETENTION = timedelta(days=BROWSING_RETENTION_DAYS)


def bucket_floor(state: ProfileState) -> date | None:
    """Oldest day a bucket may have; anything older is outside every window we can be asked about."""
    last_seen = state.last_seen
    if last_seen is None:
        return None
    return last_seen.date() - _BUCKET_RETENTION


def browsing_floor(state: ProfileState) -> datetime | None:
    last_seen = state.last_seen
    if last_seen is None:
        return None
    return last_seen - _BROWSING_RETENTION


def newer(candidate: Stamp, current: Stamp | None) -> bool:
    return current is None or candidate.key() > current.key()


def touch_latest(mapping: dict[str, datetime], key: str, at: datetime, floor: datetime | None) -> bool:
    """Record `at` as the newest time for `key`, unless it is already too old to be kept; True if it changed."""
    if floor is not None and at < floor:
        return False
    current = mapping.get(key)
    if current is None:
        insert_sorted(mapping, key, at)
        return True
    if at > current:
        mapping[key] = at
        return True
    return False


def insert_sorted(mapping: dict[K, V], key: K, value: V) -> None:
    """`mapping[key] = value`, keeping the dict in key order when the key is new.

    In place, so the model keeps its dict and `normalise` need not re-sort (or re-check) every mapping per save.
    """
    if key in mapping:
        mapping[key] = value
        return
    last = next(reversed(mapping), None)
    mapping[key] = value
    if last is not None and key < last:
        # Keys are distinct, so sorting the pairs never compares values.
        items = sorted(mapping.items())
        mapping.clear()
        mapping.update(items)


def get_or_insert(mapping: dict[K, V], key: K, factory: Callable[[], V]) -> V:
    """`mapping.setdefault(key, factory())` that keeps key order and builds the default only when needed."""
    value = mapping.get(key)
    if value is None:
        value = factory()
        insert_sorted(mapping, key, value)
    return value


def insort_unique(values: list[T], value: T) -> bool:
    """Add `value` to a sorted list of distinct values unless present; True if it was added."""
    index = bisect.bisect_left(values, value)
    if index < len(values) and values[index] == value:
        return False
    values.insert(index, value)
    return True


def _applied_key(applied: AppliedEvent) -> tuple[datetime, str]:
    return (applied.at, applied.id)


def add_applied(applied: list[AppliedEvent], item: AppliedEvent) -> None:
    """Insert into the ascending applied-event list and keep the newest MAX_APPLIED_EVENT_IDS, as `merge_applied`."""
    bisect.insort(applied, item, key=_applied_key)
    if len(applied) > MAX_APPLIED_EVENT_IDS:
        del applied[: len(applied) - MAX_APPLIED_EVENT_IDS]


def add_purchase_date(dates: list[date], day: date) -> bool:
    """Insert into the ascending distinct purchase days, keeping the newest MAX_PURCHASE_DATES; True if changed."""
    if not insort_unique(dates, day):
        return False
    if len(dates) > MAX_PURCHASE_DATES:
        del dates[: len(dates) - MAX_PURCHASE_DATES]
        return dates[0] <= day  # a day older than all kept ones went in and straight out again
    return True


def _in_key_order(mapping: dict[Any, Any]) -> bool:
    keys = list(mapping)
    return all(a < b for a, b in itertools.pairwise(keys))


def _sorted_by_key(mapping: dict[K, V]) -> dict[K, V]:
    """`dict(sorted(mapping.items()))`, returning `mapping` itself when it is already in key order."""
    if len(mapping) < 2 or _in_key_order(mapping):
        return mapping
    return dict(sorted(mapping.items()))


def _prune_latest(mapping: dict[str, datetime], floor: datetime | None, *, ordered: bool) -> dict[str, datetime]:
    # Keeping the top-N by (time, key) is a total order, so the survivors do not depend on arrival order.
    if len(mapping) <= MAX_BROWSING_KEYS and (floor is None or not mapping or min(mapping.values()) >= floor):
        # Nothing to drop: the same document, without rebuilding it.
        return mapping if ordered else _sorted_by_key(mapping)
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


def normalise(state: ProfileState, touched: set[str] | None = None) -> None:
    """Prune windows and recompute derived fields in place (callers own a private copy).

    `touched=None` normalises any state. Otherwise the state must have been normalised before and since changed
    only by `apply_in_place`, which keeps every mapping and list in order and recorded in `touched` the top-level
    fields it wrote: then only the pruning and derived fields those inputs feed are redone. Fields that this
    changes are added to `touched` as well, so the caller's change detection can look at `touched` alone.
    """
    if touched is None:
        _normalise_all(state)
        return
    if "last_seen" in touched:
        # The newest event moved both floors: old buckets and browsing keys may have to go.
        if _prune_days(state):
            touched.add("days")
        if _prune_browsing(state, ordered=True):
            touched.add("browsing")
    elif "browsing" in touched:
        _prune_browsing(state, ordered=True)  # a new key may have pushed a mapping over MAX_BROWSING_KEYS
    if "orders" in touched:
        _derive_orders(state.orders)
    if "tickets" in touched:
        _derive_tickets(state)


def _prune_days(state: ProfileState) -> bool:
    """Drop buckets below the floor from a day-ordered `days`; True if any went."""
    floor_day = bucket_floor(state)
    days = state.days
    if floor_day is None or not days or next(iter(days)) >= floor_day:
        return False
    for day in [day for day in itertools.takewhile(lambda day: day < floor_day, days)]:
        del days[day]
    return True


def _prune_browsing(state: ProfileState, *, ordered: bool) -> bool:
    """Prune the four browsing mappings; `ordered` says they are already in key order. True if any changed."""
    floor = browsing_floor(state)
    browsing = state.browsing
    changed = False
    for name in ("skus_viewed", "categories_viewed", "skus_bought", "categories_bought"):
        mapping: dict[str, datetime] = getattr(browsing, name)
        pruned = _prune_latest(mapping, floor, ordered=ordered)
        if pruned is not mapping:
            setattr(browsing, name, pruned)
            changed = True
    return changed


def _derive_orders(orders: Orders) -> None:
    average = (orders.total_spend / orders.count).quantize(_CENT) if orders.count else None
    if average is None or orders.average_spend is None or str(average) != str(orders.average_spend):
        orders.average_spend = average
    intervals = interval_stats(orders.purchase_dates)
    if intervals != orders.intervals:
        orders.intervals = intervals


def _derive_tickets(state: ProfileState) -> None:
    tickets = state.tickets
    if tickets.items:
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


def _normalise_all(state: ProfileState) -> None:
    floor_day = bucket_floor(state)
    days = state.days
    if days and (floor_day is None or min(days) >= floor_day):
        _set(state, "days", _sorted_by_key(days))
    elif days:
        state.days = {day: bucket for day, bucket in sorted(days.items()) if floor_day is None or day >= floor_day}
    for bucket in state.days.values():
        _set(bucket, "logins", _sorted_by_key(bucket.logins))

    _prune_browsing(state, ordered=False)

    orders = state.orders
    _set(orders, "categories", _sorted_by_key(orders.categories))
    _set(orders, "currencies", _sorted_unique(orders.currencies))
    dates = orders.purchase_dates
    if len(dates) > MAX_PURCHASE_DATES or not all(a < b for a, b in itertools.pairwise(dates)):
        orders.purchase_dates = merge_purchase_dates(dates)
    _derive_orders(orders)

    _set(state.logins, "channels", _sorted_by_key(state.logins.channels))
    tickets = state.tickets
    if tickets.items:
        _set(tickets, "items", _sorted_by_key(tickets.items))
    _derive_tickets(state)

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
