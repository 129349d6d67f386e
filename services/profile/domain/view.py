"""What the outside sees of a profile: the `profile.updated` metrics and the 360-degree API view.

In the API view money is a JSON number (float) and times are RFC 3339 strings with "Z", so clients in any language
read them without knowing our internal document (Decimals as strings, bookkeeping such as stamps and day buckets).
The metrics announced on `profile.updated` follow their contract instead (money as decimal strings).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from libs.common.contracts import ProfileMetrics

from .metrics import metric_values, viewed_not_bought, windows
from .state import ProfileState

_PLAIN: frozenset[type] = frozenset({str, int, float, bool})


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """Datetimes -> RFC 3339 "Z" strings, dates -> ISO dates, Decimals -> floats, recursively."""
    if value is None or type(value) in _PLAIN:
        return value  # the common case first: this runs for every metric of every profile.updated
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    plain = _PLAIN
    if isinstance(value, dict):
        return {key: item if item is None or type(item) in plain else jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [item if item is None or type(item) in plain else jsonable(item) for item in value]
    return value


def _time_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _time(moment)


def _facts(state: ProfileState) -> dict[str, Any]:
    attributes, identities = state.attributes, state.identities
    return {
        "name": attributes.name,
        "email": identities.email,
        "phone": identities.phone,
        "birthday": attributes.birthday,
        "industry": attributes.industry,
        "timezone": attributes.timezone,
        "consents": {channel: consent.granted for channel, consent in state.consents.items()},
    }


def update_metrics(state: ProfileState, as_of: datetime) -> dict[str, Any]:
    """The metrics of profile.updated as the API shows them: money as numbers, times as strings."""
    # Built JSON-ready in one go (times as strings straight away).
    metrics = metric_values(state, as_of, _time_or_none)
    metrics.update(_facts(state))
    birthday = metrics["birthday"]
    metrics["birthday"] = None if birthday is None else birthday.isoformat()
    return metrics


def _exact(amount: Decimal) -> Decimal:
    return amount


def _same(moment: datetime | None) -> datetime | None:
    return moment


def announced_metrics(state: ProfileState, as_of: datetime) -> ProfileMetrics:
    """`data.metrics` of profile.updated (libs.common.contracts.ProfileMetrics): exact amounts, aware times."""
    values = metric_values(state, as_of, _same, _exact)
    values.update(_facts(state))
    return ProfileMetrics.model_validate(values)


def customer_view(
    state: ProfileState,
    as_of: datetime,
    *,
    segments: Iterable[str] = (),
    requested_id: str | None = None,
) -> dict[str, Any]:
    """The 360-degree answer of `GET /v1/customers/{id}`; `merged_into` is set when `requested_id` was merged."""
    w = windows(state, as_of)
    skus, categories = viewed_not_bought(state, as_of)
    orders, tickets, feedback = state.orders, state.tickets, state.feedback
    view: dict[str, Any] = {
        "customer_id": state.customer_id,
        "merged_into": state.customer_id if requested_id not in (None, state.customer_id) else None,
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "event_count": state.event_count,
        "identities": state.identities.model_dump(),
        "attributes": state.attributes.model_dump(),
        "orders": {
            "count": orders.count,
            "total_spend": orders.total_spend,
            "average_spend": orders.average_spend,
            "first_purchase_at": orders.first_purchase_at,
            "last_purchase_at": orders.last_purchase_at,
            "currency": orders.currency,
            "currencies": orders.currencies,
            "categories": {name: stats.model_dump() for name, stats in orders.categories.items()},
            "intervals": orders.intervals.model_dump(),
        },
        "refunds": state.refunds.model_dump(),
        "logins": {
            **state.logins.model_dump(),
            "last_30d_by_channel": w.logins_30d_by_channel,
            "last_90d_by_channel": w.logins_90d_by_channel,
        },
        "browsing": {
            "page_views": state.browsing.page_views,
            "last_viewed_at": state.browsing.last_viewed_at,
            "viewed_not_bought": {"skus": skus, "categories": categories},
        },
        "tickets": {
            "open_count": tickets.open_count,
            "closed_count": tickets.closed_count,
            "open_ids": tickets.open_ids,
            "last_ticket_id": tickets.last_ticket_id,
            "last_ticket_at": tickets.last_ticket_at,
            "last_ticket_priority": tickets.last_ticket_priority,
        },
        "feedback": feedback.model_dump(),
        "consents": {
            channel: {"granted": consent.granted, "at": consent.stamp.at} for channel, consent in state.consents.items()
        },
        "coupons": state.coupons.model_dump(),
        "tags": state.tags,
        "segments": sorted(segments),
        "merged_from": state.merged_from,
        "erased_at": state.erased_at,
        "metrics": update_metrics(state, as_of),
    }
    return {key: jsonable(value) for key, value in view.items()}
