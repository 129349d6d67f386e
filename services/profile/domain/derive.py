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


def _prune_latest(mapping: dict[str, datetime], floor: datetime | None) -> dict[str, datetime]:
    # Keeping the top-N by (time, key) is a total order, so the survivors do not depend on arrival order.
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


def normalise(state: ProfileState) -> None:
    """Prune windows and recompute derived fields in place (callers own a private copy)."""
    floor_day = bucket_floor(state)
    state.days = {day: bucket for day, bucket in sorted(state.days.items()) if floor_day is None or day >= floor_day}
    for bucket in state.days.values():
        bucket.logins = dict(sorted(bucket.logins.items()))

    floor = browsing_floor(state)
    browsing = state.browsing
    browsing.skus_viewed = _prune_latest(browsing.skus_viewed, floor)
    browsing.categories_viewed = _prune_latest(browsing.categories_viewed, floor)
    browsing.skus_bought = _prune_latest(browsing.skus_bought, floor)
    browsing.categories_bought = _prune_latest(browsing.categories_bought, floor)

    orders = state.orders
    orders.average_spend = (orders.total_spend / orders.count).quantize(_CENT) if orders.count else None
    orders.categories = dict(sorted(orders.categories.items()))
    orders.currencies = sorted(set(orders.currencies))
    orders.purchase_dates = merge_purchase_dates(orders.purchase_dates)
    orders.intervals = interval_stats(orders.purchase_dates)

    state.logins.channels = dict(sorted(state.logins.channels.items()))

    tickets = state.tickets
    tickets.items = dict(sorted(tickets.items.items()))
    tickets.open_ids = [tid for tid, t in tickets.items.items() if t.status not in CLOSED_TICKET_STATUSES]
    tickets.open_count = len(tickets.open_ids)
    tickets.closed_count = len(tickets.items) - tickets.open_count
    if tickets.items:
        last_id, last = max(tickets.items.items(), key=lambda pair: (pair[1].opened_at, pair[0]))
        tickets.last_ticket_id = last_id
        tickets.last_ticket_at = last.opened_at
        tickets.last_ticket_priority = last.priority
    else:
        tickets.last_ticket_id = tickets.last_ticket_at = tickets.last_ticket_priority = None

    state.consents = dict(sorted(state.consents.items()))
    state.coupons.redeemed = sorted(set(state.coupons.redeemed))
    state.tags = sorted(set(state.tags))
    state.stamps = dict(sorted(state.stamps.items()))
    state.applied_events = merge_applied(state.applied_events)
    state.merged_from = sorted(set(state.merged_from))
