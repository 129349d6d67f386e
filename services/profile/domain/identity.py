"""Identity resolution decisions and profile merging.

The service looks up which existing profiles match each identifier of an incoming event; this module only decides
what to do with those matches and how two profiles combine, so it stays pure and testable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .derive import newer, normalise
from .event import EventLike, utc
from .state import CategoryStats, DayBucket, ProfileState, Ticket

IDENTIFIER_KINDS: tuple[str, ...] = ("customer_id", "email", "phone", "erp_id", "shop_id")

_NON_DIGITS = re.compile(r"\D")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def normalise_email(raw: str | None) -> str | None:
    if raw is None:
        return None
    email = raw.strip().lower()
    return email or None


def normalise_phone(raw: str | None) -> str | None:
    """Digits only with a leading "+"; an international "00" prefix is the same thing as "+"."""
    if raw is None:
        return None
    stripped = raw.strip()
    digits = _NON_DIGITS.sub("", stripped)
    if not stripped.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    return f"+{digits}" if digits else None


@dataclass(frozen=True, slots=True)
class Identifiers:
    """Normalised identifiers carried by one event; `customer_id` is the CloudEvent subject."""

    customer_id: str
    email: str | None = None
    phone: str | None = None
    erp_id: str | None = None
    shop_id: str | None = None

    def present(self) -> dict[str, str]:
        """kind -> value for the identifiers that are set, for the service's look-ups."""
        values = {kind: getattr(self, kind) for kind in IDENTIFIER_KINDS}
        return {kind: value for kind, value in values.items() if value is not None}


def identifiers_from_event(event: EventLike) -> Identifiers:
    """Only customer.upserted carries identifiers beyond the subject; other events resolve by subject alone."""
    data: Mapping[str, Any] = event.data if event.type == "customer.upserted" else {}

    def text(key: str) -> str | None:
        value = data.get(key)
        return value.strip() or None if isinstance(value, str) else None

    return Identifiers(
        customer_id=event.subject,
        email=normalise_email(text("email")),
        phone=normalise_phone(text("phone")),
        erp_id=text("erp_id"),
        shop_id=text("shop_id"),
    )


class DecisionKind(StrEnum):
    CREATE = "create"
    ATTACH = "attach"
    MERGE = "merge"


@dataclass(frozen=True, slots=True)
class IdentityDecision:
    kind: DecisionKind
    # The profile the event goes to: the new id, the matched profile, or the merge survivor.
    profile_id: str
    # Profiles to fold into `profile_id` (MERGE only), in a deterministic order.
    merged_ids: tuple[str, ...] = ()
    # (identifier kind, profile id) pairs that led to the decision, for the audit trail.
    evidence: tuple[tuple[str, str], ...] = field(default=())


def choose_survivor(candidates: Iterable[str], first_seen: Mapping[str, datetime | None]) -> str:
    """Oldest profile survives (it has the longest history and most external references), then lowest id."""

    def rank(profile_id: str) -> tuple[bool, datetime, str]:
        seen = first_seen.get(profile_id)
        # Profiles with no first_seen sort after every dated one.
        return (seen is None, utc(seen) if seen is not None else _EPOCH, profile_id)

    ordered = sorted(candidates, key=rank)
    if not ordered:
        raise ValueError("choose_survivor needs at least one candidate")
    return ordered[0]


def resolve_identity(
    identifiers: Identifiers,
    matches: Mapping[str, Iterable[str]],
    first_seen: Mapping[str, datetime | None],
) -> IdentityDecision:
    """Decide where an event belongs.

    `matches` maps an identifier kind (IDENTIFIER_KINDS) to the ids of existing profiles holding that value;
    `first_seen` gives each candidate's first_seen for the survivor rule. Unmatched -> CREATE a profile with the
    event's subject as id; one profile -> ATTACH; several -> MERGE into the survivor.
    """
    unknown = set(matches) - set(IDENTIFIER_KINDS)
    if unknown:
        raise ValueError(f"unknown identifier kinds: {sorted(unknown)}")
    evidence = tuple(sorted({(kind, pid) for kind, pids in matches.items() for pid in pids}))
    candidates = {pid for _, pid in evidence}
    if not candidates:
        return IdentityDecision(kind=DecisionKind.CREATE, profile_id=identifiers.customer_id)
    if len(candidates) == 1:
        return IdentityDecision(kind=DecisionKind.ATTACH, profile_id=next(iter(candidates)), evidence=evidence)
    survivor = choose_survivor(candidates, first_seen)
    merged = tuple(sorted(candidates - {survivor}))
    return IdentityDecision(kind=DecisionKind.MERGE, profile_id=survivor, merged_ids=merged, evidence=evidence)


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    for key, count in other.items():
        into[key] = into.get(key, 0) + count


def _max_times(into: dict[str, datetime], other: Mapping[str, datetime]) -> None:
    for key, at in other.items():
        current = into.get(key)
        into[key] = at if current is None else max(current, at)


# Last-writer-wins slots whose value lives in fields other than "section.field".
_STAMPED_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "feedback.nps": ("feedback", ("last_nps", "last_nps_at")),
    "feedback.csat": ("feedback", ("last_csat", "last_csat_at")),
}


def _merge_ticket(a: Ticket, b: Ticket) -> Ticket:
    out = a.model_copy(deep=True)
    out.opened_at = min(a.opened_at, b.opened_at)
    if b.status_stamp is not None and newer(b.status_stamp, a.status_stamp):
        out.status, out.status_stamp = b.status, b.status_stamp
    if b.priority_stamp is not None and newer(b.priority_stamp, a.priority_stamp):
        out.priority, out.priority_stamp = b.priority, b.priority_stamp
    return out


def merge_states(survivor: ProfileState, merged: ProfileState) -> ProfileState:
    """Fold `merged` into `survivor`: the result equals one profile that had received both event streams."""
    out = survivor.model_copy(deep=True)
    other = merged.model_copy(deep=True)

    out.first_seen = _min(out.first_seen, other.first_seen)
    out.last_seen = _max(out.last_seen, other.last_seen)
    out.event_count += other.event_count
    out.erased_at = _max(out.erased_at, other.erased_at)
    _merge_stamped(out, other)
    _merge_orders(out, other)
    _merge_activity(out, other)
    _merge_days(out, other)
    _merge_support(out, other)

    out.coupons.redeemed += other.coupons.redeemed
    out.coupons.orders_with_coupon += other.coupons.orders_with_coupon
    out.tags += other.tags
    out.applied_events += other.applied_events
    out.merged_from += [*other.merged_from, other.customer_id]
    normalise(out)
    return out


def _merge_stamped(out: ProfileState, other: ProfileState) -> None:
    """Last-writer-wins fields: the newer stamp's values, field group by field group."""
    for name, stamp in other.stamps.items():
        if not newer(stamp, out.stamps.get(name)):
            continue
        out.stamps[name] = stamp
        section, fields = _STAMPED_FIELDS.get(name, (name.split(".")[0], (name.split(".")[1],)))
        for field_name in fields:
            setattr(getattr(out, section), field_name, getattr(getattr(other, section), field_name))


def _merge_orders(out: ProfileState, other: ProfileState) -> None:
    orders, o = out.orders, other.orders
    orders.count += o.count
    orders.total_spend += o.total_spend
    orders.first_purchase_at = _min(orders.first_purchase_at, o.first_purchase_at)
    orders.last_purchase_at = _max(orders.last_purchase_at, o.last_purchase_at)
    orders.currencies += o.currencies
    orders.purchase_dates += o.purchase_dates
    for category, stats in o.categories.items():
        mine = orders.categories.setdefault(category, CategoryStats())
        mine.orders += stats.orders
        mine.quantity += stats.quantity
        mine.spend += stats.spend

    out.refunds.count += other.refunds.count
    out.refunds.amount += other.refunds.amount
    out.refunds.last_refund_at = _max(out.refunds.last_refund_at, other.refunds.last_refund_at)


def _merge_activity(out: ProfileState, other: ProfileState) -> None:
    """Logins and browsing."""
    logins = out.logins
    logins.count += other.logins.count
    logins.first_login_at = _min(logins.first_login_at, other.logins.first_login_at)
    logins.last_login_at = _max(logins.last_login_at, other.logins.last_login_at)
    _add_counts(logins.channels, other.logins.channels)

    browsing, b = out.browsing, other.browsing
    browsing.page_views += b.page_views
    browsing.last_viewed_at = _max(browsing.last_viewed_at, b.last_viewed_at)
    _max_times(browsing.skus_viewed, b.skus_viewed)
    _max_times(browsing.categories_viewed, b.categories_viewed)
    _max_times(browsing.skus_bought, b.skus_bought)
    _max_times(browsing.categories_bought, b.categories_bought)


def _merge_days(out: ProfileState, other: ProfileState) -> None:
    for day, bucket in other.days.items():
        mine_day = out.days.setdefault(day, DayBucket())
        _add_counts(mine_day.logins, bucket.logins)
        mine_day.purchases += bucket.purchases
        mine_day.spend += bucket.spend
        mine_day.page_views += bucket.page_views


def _merge_support(out: ProfileState, other: ProfileState) -> None:
    """Tickets, feedback and consents."""
    for ticket_id, ticket in other.tickets.items.items():
        current = out.tickets.items.get(ticket_id)
        out.tickets.items[ticket_id] = ticket if current is None else _merge_ticket(current, ticket)

    out.feedback.responses += other.feedback.responses
    for channel, consent in other.consents.items():
        current_consent = out.consents.get(channel)
        if current_consent is None or newer(consent.stamp, current_consent.stamp):
            out.consents[channel] = consent
