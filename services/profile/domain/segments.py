"""A small JSON condition language over a flat view of a profile.

    {"all": [...]} | {"any": [...]} | {"not": {...}} | {"field": "orders.count", "op": ">=", "value": 3}

Conditions are parsed once (`parse_condition`) into an immutable tree, with every error reported at a JSON-pointer
path such as "/all/1/op", so an API can name the offending part. Semantics of missing (None) profile values:
`=`/`in`/`contains`/ordering are false on them, and `!=`/`not_in` are the exact negations of `=`/`in`.
`exists` is false for None and for an empty list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, get_args

from libs.common.events import Channel

from .event import utc
from .metrics import derived_metrics, viewed_not_bought
from .state import ProfileState

MAX_DEPTH = 16
MAX_CHILDREN = 100


class FieldType(StrEnum):
    NUMBER = "number"
    STRING = "string"
    DATETIME = "datetime"
    BOOL = "bool"
    LIST = "list"  # list of strings


CONSENT_CHANNELS: tuple[str, ...] = get_args(Channel)

_N, _S, _D, _B, _L = FieldType.NUMBER, FieldType.STRING, FieldType.DATETIME, FieldType.BOOL, FieldType.LIST

KNOWN_FIELDS: dict[str, FieldType] = {
    "customer_id": _S,
    "first_seen": _D,
    "last_seen": _D,
    "identities.email": _S,
    "identities.phone": _S,
    "identities.erp_id": _S,
    "identities.shop_id": _S,
    "region": _S,
    "industry": _S,
    "timezone": _S,
    "attributes.birth_month": _N,
    "orders.count": _N,
    "orders.total_spend": _N,
    "orders.average_spend": _N,
    "orders.first_purchase_at": _D,
    "orders.last_purchase_at": _D,
    "orders.days_since_last_purchase": _N,
    "orders.typical_interval_days": _N,
    "orders.currency": _S,
    "orders.categories": _L,
    "orders.favourite_category": _S,
    "orders.count_30d": _N,
    "orders.spend_30d": _N,
    "refunds.count": _N,
    "refunds.amount": _N,
    "logins.count": _N,
    "logins.last_login_at": _D,
    "logins.days_since_last_login": _N,
    "logins.count_30d": _N,
    "logins.count_90d": _N,
    "logins.channels_30d": _L,
    "browsing.page_views": _N,
    "browsing.viewed_not_bought_skus": _L,
    "browsing.viewed_not_bought_categories": _L,
    "tickets.open_count": _N,
    "tickets.closed_count": _N,
    "tickets.last_priority": _S,
    "tickets.last_ticket_at": _D,
    "feedback.last_nps": _N,
    "feedback.last_nps_at": _D,
    "feedback.last_csat": _N,
    "feedback.last_csat_at": _D,
    **{f"consents.{channel}": _B for channel in CONSENT_CHANNELS},
    "coupons.count": _N,
    "coupons.codes": _L,
    "tags": _L,
    "metrics.login_ratio_30_90": _N,
    "metrics.purchase_ratio_30_90": _N,
    "metrics.spend_ratio_30_90": _N,
}

OPS: tuple[str, ...] = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in", "contains", "exists")
_ORDERING = frozenset({"<", "<=", ">", ">="})


def flat_view(state: ProfileState, as_of: datetime) -> dict[str, Any]:
    """Every KNOWN_FIELDS key with its value as of `as_of` (numbers as int/float, times as aware datetimes)."""
    metrics = derived_metrics(state, as_of)
    skus, categories = viewed_not_bought(state, as_of)
    view: dict[str, Any] = {
        "customer_id": state.customer_id,
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "identities.email": state.identities.email,
        "identities.phone": state.identities.phone,
        "identities.erp_id": state.identities.erp_id,
        "identities.shop_id": state.identities.shop_id,
        "region": state.attributes.region,
        "industry": state.attributes.industry,
        "timezone": state.attributes.timezone,
        "attributes.birth_month": state.attributes.birthday.month if state.attributes.birthday else None,
        "orders.count": state.orders.count,
        "orders.total_spend": metrics["total_spend"],
        "orders.average_spend": metrics["average_spend"],
        "orders.first_purchase_at": state.orders.first_purchase_at,
        "orders.last_purchase_at": state.orders.last_purchase_at,
        "orders.days_since_last_purchase": metrics["days_since_last_purchase"],
        "orders.typical_interval_days": metrics["typical_interval_days"],
        "orders.currency": state.orders.currency,
        "orders.categories": sorted(state.orders.categories),
        "orders.favourite_category": metrics["favourite_category"],
        "orders.count_30d": metrics["purchases_30d"],
        "orders.spend_30d": metrics["spend_30d"],
        "refunds.count": state.refunds.count,
        "refunds.amount": metrics["refund_amount"],
        "logins.count": state.logins.count,
        "logins.last_login_at": state.logins.last_login_at,
        "logins.days_since_last_login": metrics["days_since_last_login"],
        "logins.count_30d": metrics["logins_30d"],
        "logins.count_90d": metrics["logins_90d"],
        "logins.channels_30d": sorted(metrics["logins_30d_by_channel"]),
        "browsing.page_views": state.browsing.page_views,
        "browsing.viewed_not_bought_skus": skus,
        "browsing.viewed_not_bought_categories": categories,
        "tickets.open_count": state.tickets.open_count,
        "tickets.closed_count": state.tickets.closed_count,
        "tickets.last_priority": state.tickets.last_ticket_priority,
        "tickets.last_ticket_at": state.tickets.last_ticket_at,
        "feedback.last_nps": state.feedback.last_nps,
        "feedback.last_nps_at": state.feedback.last_nps_at,
        "feedback.last_csat": state.feedback.last_csat,
        "feedback.last_csat_at": state.feedback.last_csat_at,
        "coupons.count": len(state.coupons.redeemed),
        "coupons.codes": list(state.coupons.redeemed),
        "tags": list(state.tags),
        "metrics.login_ratio_30_90": metrics["login_ratio_30_90"],
        "metrics.purchase_ratio_30_90": metrics["purchase_ratio_30_90"],
        "metrics.spend_ratio_30_90": metrics["spend_ratio_30_90"],
    }
    for channel in CONSENT_CHANNELS:
        consent = state.consents.get(channel)
        view[f"consents.{channel}"] = None if consent is None else consent.granted
    return view


class InvalidCondition(ValueError):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path or '/'}: {message}")
        self.path = path or "/"
        self.message = message


@dataclass(frozen=True, slots=True)
class AllOf:
    children: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Condition


@dataclass(frozen=True, slots=True)
class Leaf:
    field: str
    op: str
    # Already converted: datetimes parsed, lists turned into tuples.
    value: Any = None


Condition = AllOf | AnyOf | Not | Leaf


def parse_condition(raw: Any) -> Condition:
    """Validate a JSON condition; raises InvalidCondition naming the bad part."""
    return _parse(raw, "", 0)


def _parse(raw: Any, path: str, depth: int) -> Condition:
    if depth > MAX_DEPTH:
        raise InvalidCondition(path, f"conditions may nest at most {MAX_DEPTH} levels")
    if not isinstance(raw, Mapping):
        raise InvalidCondition(path, "a condition must be a JSON object")
    combinators = [key for key in ("all", "any", "not") if key in raw]
    if combinators:
        key = combinators[0]
        extra = sorted(str(k) for k in raw if k != key)
        if extra:
            raise InvalidCondition(f"{path}/{extra[0]}", f"unexpected key next to '{key}'")
        if key == "not":
            return Not(_parse(raw["not"], f"{path}/not", depth + 1))
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise InvalidCondition(f"{path}/{key}", f"'{key}' needs a non-empty list of conditions")
        if len(items) > MAX_CHILDREN:
            raise InvalidCondition(f"{path}/{key}", f"'{key}' takes at most {MAX_CHILDREN} conditions")
        children = tuple(_parse(item, f"{path}/{key}/{i}", depth + 1) for i, item in enumerate(items))
        return AllOf(children) if key == "all" else AnyOf(children)
    return _parse_leaf(raw, path)


def _parse_leaf(raw: Mapping[str, Any], path: str) -> Leaf:
    for key in raw:
        if key not in ("field", "op", "value"):
            raise InvalidCondition(f"{path}/{key}", "unknown key; expected all, any, not or field/op/value")
    if "field" not in raw:
        raise InvalidCondition(f"{path}/field", "missing 'field'")
    name = raw["field"]
    if not isinstance(name, str) or name not in KNOWN_FIELDS:
        raise InvalidCondition(f"{path}/field", f"unknown field {name!r}")
    if "op" not in raw:
        raise InvalidCondition(f"{path}/op", "missing 'op'")
    op = raw["op"]
    if not isinstance(op, str) or op not in OPS:
        raise InvalidCondition(f"{path}/op", f"unknown operator {op!r}; expected one of {', '.join(OPS)}")
    kind = KNOWN_FIELDS[name]
    _check_op(kind, op, name, f"{path}/op")
    value_path = f"{path}/value"
    if op == "exists":
        value = raw.get("value", True)
        if not isinstance(value, bool):
            raise InvalidCondition(value_path, "'exists' takes true or false")
        return Leaf(name, op, value)
    if "value" not in raw:
        raise InvalidCondition(value_path, f"'{op}' needs a value")
    value = raw["value"]
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise InvalidCondition(value_path, f"'{op}' needs a non-empty list")
        element_kind = FieldType.STRING if kind is FieldType.LIST else kind
        return Leaf(name, op, tuple(_scalar(v, element_kind, f"{value_path}/{i}") for i, v in enumerate(value)))
    if op == "contains":
        if not isinstance(value, str):
            raise InvalidCondition(value_path, "'contains' needs a string")
        return Leaf(name, op, value)
    if value is None and op in ("=", "!="):
        return Leaf(name, op, None)
    return Leaf(name, op, _scalar(value, kind, value_path))


def _check_op(kind: FieldType, op: str, name: str, path: str) -> None:
    allowed: bool
    if op in _ORDERING:
        allowed = kind in (FieldType.NUMBER, FieldType.DATETIME)
    elif op == "contains":
        allowed = kind in (FieldType.STRING, FieldType.LIST)
    elif op in ("=", "!="):
        allowed = kind is not FieldType.LIST
    else:
        allowed = True
    if not allowed:
        raise InvalidCondition(path, f"operator '{op}' does not apply to {kind.value} field '{name}'")


def _scalar(value: Any, kind: FieldType, path: str) -> Any:
    if kind is FieldType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidCondition(path, "expected a finite number")
        return value
    if kind is FieldType.BOOL:
        if not isinstance(value, bool):
            raise InvalidCondition(path, "expected true or false")
        return value
    if kind is FieldType.DATETIME:
        if not isinstance(value, str):
            raise InvalidCondition(path, "expected an ISO 8601 date-time string")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidCondition(path, f"expected an ISO 8601 date-time string: {exc}") from exc
        return utc(moment) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise InvalidCondition(path, "expected a string")
    return value


def evaluate(condition: Condition | Mapping[str, Any], view: Mapping[str, Any]) -> bool:
    """True when `view` (from `flat_view`) satisfies the condition; raw JSON is parsed first."""
    parsed = condition if isinstance(condition, AllOf | AnyOf | Not | Leaf) else parse_condition(condition)
    return _eval(parsed, view)


def _eval(condition: Condition, view: Mapping[str, Any]) -> bool:
    if isinstance(condition, AllOf):
        return all(_eval(child, view) for child in condition.children)
    if isinstance(condition, AnyOf):
        return any(_eval(child, view) for child in condition.children)
    if isinstance(condition, Not):
        return not _eval(condition.child, view)
    return _eval_leaf(condition, view.get(condition.field))


def _eval_leaf(leaf: Leaf, actual: Any) -> bool:
    op, value = leaf.op, leaf.value
    if op == "exists":
        present = actual is not None and actual != []
        return bool(present == value)
    if op == "=":
        return bool(actual == value)
    if op == "!=":
        return bool(actual != value)
    if op in ("in", "not_in"):
        if isinstance(actual, list):
            hit = any(item in value for item in actual)
        else:
            hit = actual is not None and actual in value
        return hit if op == "in" else not hit
    if actual is None:
        return False
    if op == "contains":
        return bool(value in actual)
    if op == "<":
        return bool(actual < value)
    if op == "<=":
        return bool(actual <= value)
    if op == ">":
        return bool(actual > value)
    return bool(actual >= value)


def membership_changes(
    old_members: set[str] | frozenset[str],
    segments: Mapping[str, Condition | Mapping[str, Any]],
    view: Mapping[str, Any],
) -> tuple[set[str], set[str]]:
    """(entered, left) segment ids. Ids in `old_members` that are no longer defined are not reported as left:
    deleting a segment is handled once by whoever deletes it, not per customer."""
    now = {segment_id for segment_id, condition in segments.items() if evaluate(condition, view)}
    entered = now - set(old_members)
    left = {segment_id for segment_id in old_members if segment_id in segments and segment_id not in now}
    return entered, left
