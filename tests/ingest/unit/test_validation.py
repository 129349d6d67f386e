"""Every schema rule, on the pure validation functions (no I/O, fast)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from libs.common.envelope import format_time, parse_time
from libs.common.events import UPSTREAM_EVENT_TYPES
from services.ingest.domain.examples import flat_example, structured_example
from services.ingest.domain.incoming import (
    InvalidEvent,
    MalformedJson,
    Shape,
    TimeWindow,
    validate_batch_json,
    validate_json,
    validate_python,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def fields_of(raw: Any, shape: Shape = "flat") -> list[str]:
    with pytest.raises(InvalidEvent) as caught:
        validate_python(raw, shape, now=NOW)
    return [error["field"] for error in caught.value.errors]


def purchase(**data: Any) -> dict[str, Any]:
    event = flat_example("purchase")
    event["data"] = {**event["data"], **data}
    return event


@pytest.mark.parametrize("event_type", list(UPSTREAM_EVENT_TYPES))
def test_every_example_is_valid_in_both_shapes(event_type: str) -> None:
    flat = validate_python(flat_example(event_type), now=NOW)
    structured = validate_json(orjson.dumps(structured_example(event_type)), "structured", now=NOW)
    assert flat.type == structured.type == event_type
    assert flat.customer_id == structured.customer_id == "c-42"
    assert flat.data.schema_version == "1"


def test_amount_must_not_be_negative() -> None:
    assert fields_of(purchase(amount=-1, items=[])) == ["data.amount"]


def test_amount_must_match_items_within_a_cent() -> None:
    assert validate_python(purchase(amount=120.509), now=NOW).data.amount  # type: ignore[attr-defined]
    assert fields_of(purchase(amount=121.0)) == ["data"]
    two = [
        {"sku": "a", "category": "c", "quantity": 3, "price": 0.1},
        {"sku": "b", "category": "c", "quantity": 1, "price": 0.7},
    ]
    assert validate_python(purchase(amount=1.0, items=two), now=NOW).id == "evt-123"
    assert fields_of(purchase(amount=1.02, items=two)) == ["data"]


def test_line_item_rules_name_the_nested_field() -> None:
    bad = [{"sku": "s", "category": "c", "quantity": 0, "price": -1}]
    assert sorted(fields_of(purchase(items=bad, amount=0))) == ["data.items[0].price", "data.items[0].quantity"]


@pytest.mark.parametrize("currency", ["usd", "XYZ", "US", "EURO"])
def test_currency_must_be_iso_4217(currency: str) -> None:
    assert fields_of(purchase(currency=currency)) == ["data.currency"]


@pytest.mark.parametrize(
    "moment", ["2026-11-20T10:00:00", "2026-11-20", "20261120", 1763632800, "2026-02-30T00:00:00Z", "yesterday"]
)
def test_time_must_be_rfc3339_with_zone(moment: Any) -> None:
    assert fields_of({**flat_example("login"), "time": moment}) == ["time"]


def test_time_may_be_at_most_five_minutes_ahead() -> None:
    def ahead(minutes: int) -> str:
        return (NOW + timedelta(minutes=minutes)).isoformat()

    assert validate_python({**flat_example("login"), "time": ahead(4)}, now=NOW).time > NOW
    assert fields_of({**flat_example("login"), "time": ahead(6)}) == ["time"]
    offset = validate_python({**flat_example("login"), "time": "2026-11-20T13:00:00+02:00"}, now=NOW)
    assert offset.time == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)


def test_time_before_1970_is_refused_naming_the_field() -> None:
    """A 1950 ticket overflowed feedback's 32-bit SLA seconds downstream: the door refuses it instead."""
    with pytest.raises(InvalidEvent) as caught:
        validate_python({**flat_example("ticket.opened"), "time": "1950-01-01T00:00:00Z"}, now=NOW)
    assert [(e["field"], e["code"]) for e in caught.value.errors] == [("time", "past_time")]
    assert "1970-01-01T00:00:00Z" in caught.value.errors[0]["message"]
    assert validate_python({**flat_example("login"), "time": "1970-01-01T00:00:00Z"}, now=NOW).time.year == 1970
    batch = orjson.dumps({"events": [flat_example("login"), {**flat_example("login"), "time": "1969-12-31T23:59:59Z"}]})
    assert validate_batch_json(batch, "flat", 10, now=NOW) is None  # item by item then names the bad one


def test_the_time_window_is_configurable() -> None:
    window = TimeWindow(datetime(2000, 1, 1, tzinfo=UTC), timedelta(seconds=30))
    login = flat_example("login")
    with pytest.raises(InvalidEvent, match="before 2000-01-01"):
        validate_python({**login, "time": "1999-12-31T23:59:59Z"}, now=NOW, window=window)
    with pytest.raises(InvalidEvent, match="more than 30 seconds in the future"):
        validate_python({**login, "time": (NOW + timedelta(seconds=31)).isoformat()}, now=NOW, window=window)
    assert validate_python({**login, "time": "2000-01-01T00:00:00Z"}, now=NOW, window=window).time.year == 2000


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00.123456Z",
        "2026-11-20T10:00:00.000000Z",
        "2026-11-20T10:00:00.5Z",
        "2026-11-20T10:00:00.123456789Z",
        "2026-11-20 10:00:00Z",
        "2026-11-20T10:00:00+00:00",
        "2026-11-20T12:00:00.250000+02:00",
        "2026-11-20T05:30:00-04:30",
    ],
)
def test_time_text_is_the_formatted_utc_time_whatever_the_input_looked_like(text: str) -> None:
    event = validate_python({**flat_example("login"), "time": text}, now=NOW)
    assert event.time_text == format_time(event.time)
    assert parse_time(event.time_text) == event.time


@pytest.mark.parametrize("field", ["id", "customer_id"])
@pytest.mark.parametrize("value", ["", "   ", "x" * 129, 7])
def test_ids_are_1_to_128_characters(field: str, value: Any) -> None:
    assert fields_of({**flat_example("login"), field: value}) == [field]


def test_ids_of_128_characters_are_fine() -> None:
    assert validate_python({**flat_example("login"), "id": "x" * 128}, now=NOW).id == "x" * 128


def test_unknown_or_missing_type_names_the_type_field() -> None:
    assert fields_of({**flat_example("login"), "type": "purchase.deleted"}) == ["type"]
    without = flat_example("login")
    del without["type"]
    assert fields_of(without) == ["type"]


def test_unknown_fields_are_rejected_by_name() -> None:
    assert fields_of({**flat_example("login"), "colour": "red"}) == ["colour"]
    assert fields_of(purchase(colour="red")) == ["data.colour"]


def test_missing_fields_are_named() -> None:
    event = flat_example("refund")
    del event["data"]["order_id"]
    assert fields_of(event) == ["data.order_id"]


def test_schema_version_is_checked() -> None:
    assert validate_python(purchase(schema_version="1"), now=NOW).data.schema_version == "1"
    assert fields_of(purchase(schema_version="2")) == ["data.schema_version"]


@pytest.mark.parametrize(
    ("event_type", "data", "field"),
    [
        ("survey.response", {"nps": 11}, "data.nps"),
        ("survey.response", {"csat": 0}, "data.csat"),
        ("survey.response", {"comment": "no score"}, "data"),
        ("consent.changed", {"channel": "pigeon", "granted": True}, "data.channel"),
        ("customer.upserted", {"email": "not-an-email"}, "data.email"),
        ("customer.upserted", {"timezone": "Mars/Olympus"}, "data.timezone"),
        ("ticket.opened", {"ticket_id": "t", "priority": "whenever"}, "data.priority"),
        ("login", {"channel": "telepathy"}, "data.channel"),
    ],
)
def test_type_specific_rules(event_type: str, data: dict[str, Any], field: str) -> None:
    assert fields_of({**flat_example(event_type), "data": data}) == [field]


def test_cloudevents_structured_mode_rules() -> None:
    event = structured_example("login")
    assert fields_of({**event, "specversion": "0.3"}, "structured") == ["specversion"]
    assert fields_of({k: v for k, v in event.items() if k != "source"}, "structured") == ["source"]
    assert fields_of({**event, "datacontenttype": "text/xml"}, "structured") == ["datacontenttype"]
    assert fields_of({**event, "customer_id": "c-1"}, "structured") == ["customer_id"]


def test_malformed_json_is_not_a_validation_error() -> None:
    with pytest.raises(MalformedJson):
        validate_json(b'{"id": ', now=NOW)


def _numbered(event_type: str, n: int, shape: Shape) -> dict[str, Any]:
    example = flat_example(event_type) if shape == "flat" else structured_example(event_type, f"id-{n}")
    return {**example, "id": f"id-{n}"}


@pytest.mark.parametrize("shape", ["flat", "structured"])
def test_a_whole_batch_validates_in_one_pass_exactly_as_item_by_item(shape: Shape) -> None:
    items = [_numbered(event_type, n, shape) for n, event_type in enumerate(UPSTREAM_EVENT_TYPES)]
    body = orjson.dumps({"events": items} if shape == "flat" else items)
    at_once = validate_batch_json(body, shape, 1000, now=NOW)
    one_by_one = [validate_python(item, shape, now=NOW) for item in items]
    assert at_once is not None
    assert [(e.id, e.type, e.customer_id, e.time, e.data) for e in at_once] == [
        (e.id, e.type, e.customer_id, e.time, e.data) for e in one_by_one
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"events": [flat_example("login"), purchase(amount=-1)]},  # one bad item
        {"events": [flat_example("login")], "extra": 1},  # not the batch shape
        {"events": [flat_example("login")] * 3},  # more than max_items
        {"events": [{**flat_example("login"), "time": "2099-01-01T00:00:00Z"}]},  # in the future
    ],
)
def test_a_batch_with_anything_wrong_is_left_to_item_by_item_validation(body: dict[str, Any]) -> None:
    assert validate_batch_json(orjson.dumps(body), "flat", 2, now=NOW) is None


def test_no_string_may_hold_a_nul_character() -> None:
    """PostgreSQL's text and jsonb cannot store U+0000: found by the no-5xx property test as a 500."""
    upsert = flat_example("customer.upserted")
    upsert["data"] = {**upsert["data"], "name": "Ann\x00"}
    assert fields_of(upsert) == ["data.name"]
    with pytest.raises(InvalidEvent) as caught:
        validate_json(orjson.dumps({**flat_example("login"), "id": "evt\x00"}), now=NOW)
    assert caught.value.errors == [
        {"field": "id", "message": "must not contain the NUL character (U+0000)", "code": "nul_character"}
    ]
    structured = {**structured_example("login"), "source": "shop\x00"}
    with pytest.raises(InvalidEvent) as caught:
        validate_json(orjson.dumps(structured), "structured", now=NOW)
    assert [error["field"] for error in caught.value.errors] == ["source"]
    page_view = {**flat_example("page_view"), "data": {"sku": "s-1", "url": "https://shop/\x00"}}
    assert fields_of(page_view) == ["data.url"]
