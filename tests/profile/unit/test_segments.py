from __future__ import annotations

from typing import Any

import pytest

from services.profile.domain import (
    KNOWN_FIELDS,
    InvalidCondition,
    evaluate,
    flat_view,
    membership_changes,
    parse_condition,
    set_tags,
)

from .helpers import EXAMPLE_AS_OF, EXAMPLE_EVENTS, build


@pytest.fixture(scope="module")
def view() -> dict[str, Any]:
    state, _ = set_tags(build(EXAMPLE_EVENTS), add=["vip"])
    return flat_view(state, EXAMPLE_AS_OF)


def test_flat_view_covers_every_known_field(view: dict[str, Any]) -> None:
    assert set(view) == set(KNOWN_FIELDS)
    assert view["orders.count"] == 3
    assert view["orders.total_spend"] == 95.0
    assert view["region"] == "EU"
    assert view["tags"] == ["vip"]
    assert view["logins.count_30d"] == 2
    assert view["consents.email"] is True
    assert view["consents.sms"] is None
    assert view["browsing.viewed_not_bought_skus"] == ["B", "D"]


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        (
            {"all": [{"field": "orders.count", "op": ">=", "value": 3}, {"field": "orders.count", "op": "~"}]},
            "/all/1/op",
        ),
        ({"any": [{"field": "orders.nope", "op": "=", "value": 1}]}, "/any/0/field"),
        ({"not": {"field": "orders.count", "op": ">", "value": "3"}}, "/not/value"),
        ({"field": "region", "op": "in", "value": ["EU", 3]}, "/value/1"),
        ({"field": "region", "op": "<", "value": "EU"}, "/op"),
        ({"field": "tags", "op": "=", "value": "vip"}, "/op"),
        ({"field": "orders.count", "op": "contains", "value": "3"}, "/op"),
        ({"all": []}, "/all"),
        ({"all": [5]}, "/all/0"),
        ({"field": "region", "op": "=", "value": "EU", "extra": 1}, "/extra"),
        ({"all": [{"field": "region", "op": "="}], "any": []}, "/any"),
        ({"field": "last_seen", "op": ">", "value": "yesterday"}, "/value"),
        ({"field": "orders.count", "op": "exists", "value": "yes"}, "/value"),
        ({"field": "orders.count", "op": ">=", "value": True}, "/value"),
        ({"op": "=", "value": 1}, "/field"),
        ({"field": "region", "op": "not_in", "value": []}, "/value"),
        ([], "/"),
    ],
)
def test_parse_errors_name_the_bad_part(condition: Any, path: str) -> None:
    with pytest.raises(InvalidCondition) as info:
        parse_condition(condition)
    assert info.value.path == path
    assert info.value.message


def test_too_deep_nesting_is_rejected() -> None:
    condition: dict[str, Any] = {"field": "region", "op": "exists"}
    for _ in range(20):
        condition = {"not": condition}
    with pytest.raises(InvalidCondition, match="nest"):
        parse_condition(condition)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "orders.count", "op": ">=", "value": 3}, True),
        ({"field": "orders.count", "op": ">", "value": 3}, False),
        ({"field": "orders.total_spend", "op": "<=", "value": 95}, True),
        ({"field": "region", "op": "=", "value": "EU"}, True),
        ({"field": "region", "op": "!=", "value": "EU"}, False),
        ({"field": "region", "op": "in", "value": ["US", "EU"]}, True),
        ({"field": "region", "op": "not_in", "value": ["US"]}, True),
        ({"field": "industry", "op": "not_in", "value": ["retail"]}, True),
        ({"field": "industry", "op": "in", "value": ["retail"]}, False),
        ({"field": "industry", "op": "exists"}, False),
        ({"field": "industry", "op": "exists", "value": False}, True),
        ({"field": "industry", "op": "=", "value": None}, True),
        ({"field": "tags", "op": "contains", "value": "vip"}, True),
        ({"field": "tags", "op": "in", "value": ["gold", "vip"]}, True),
        ({"field": "tags", "op": "not_in", "value": ["gold"]}, True),
        ({"field": "identities.email", "op": "contains", "value": "@example.com"}, True),
        ({"field": "feedback.last_csat", "op": "<", "value": 3}, False),
        ({"field": "last_seen", "op": ">", "value": "2024-04-01T00:00:00Z"}, True),
        ({"field": "last_seen", "op": ">", "value": "2024-04-02T00:00:00+00:00"}, False),
        ({"field": "consents.email", "op": "=", "value": True}, True),
        ({"field": "metrics.login_ratio_30_90", "op": ">", "value": 4}, True),
        (
            {
                "all": [
                    {"field": "orders.count", "op": ">=", "value": 3},
                    {
                        "any": [
                            {"field": "region", "op": "=", "value": "US"},
                            {"field": "tickets.open_count", "op": ">", "value": 0},
                        ]
                    },
                    {"not": {"field": "feedback.last_nps", "op": "<", "value": 7}},
                ]
            },
            True,
        ),
        ({"not": {"all": [{"field": "orders.count", "op": "=", "value": 3}]}}, False),
    ],
)
def test_evaluate(view: dict[str, Any], condition: dict[str, Any], expected: bool) -> None:
    assert evaluate(condition, view) is expected
    assert evaluate(parse_condition(condition), view) is expected


def test_membership_enter_and_leave(view: dict[str, Any]) -> None:
    segments: dict[str, dict[str, Any]] = {
        "loyal": {"field": "orders.count", "op": ">=", "value": 3},
        "eu": {"field": "region", "op": "=", "value": "EU"},
        "detractors": {"field": "feedback.last_nps", "op": "<=", "value": 6},
    }
    entered, left = membership_changes({"loyal", "detractors", "deleted-segment"}, segments, view)
    assert entered == {"eu"}
    assert left == {"detractors"}
    assert membership_changes({"loyal", "eu"}, segments, view) == (set(), set())
