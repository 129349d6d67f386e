from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from libs.common.envelope import CloudEvent, EnvelopeError, derived_event, format_time, parse_time

EVENT = CloudEvent(
    id="evt-1",
    source="shop",
    type="purchase",
    subject="c-42",
    time=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    data={"order_id": "o-9", "amount": 120.5},
)


def test_kafka_round_trip_keeps_every_attribute() -> None:
    key, value, headers = EVENT.to_kafka()
    assert key == b"c-42"
    assert dict(headers)["ce_specversion"] == b"1.0"
    assert dict(headers)["ce_subject"] == b"c-42"
    assert CloudEvent.from_kafka(value, headers) == EVENT


@pytest.mark.parametrize("missing", ["ce_id", "ce_type", "ce_time", "ce_subject", "ce_source"])
def test_missing_header_is_a_poison_message(missing: str) -> None:
    _, value, headers = EVENT.to_kafka()
    with pytest.raises(EnvelopeError, match=missing):
        CloudEvent.from_kafka(value, [(k, v) for k, v in headers if k != missing])


def test_value_must_be_a_json_object() -> None:
    _, _, headers = EVENT.to_kafka()
    with pytest.raises(EnvelopeError, match="not JSON"):
        CloudEvent.from_kafka(b"{not json", headers)
    with pytest.raises(EnvelopeError, match="object"):
        CloudEvent.from_kafka(b"[1, 2]", headers)


def test_times_are_utc_and_need_a_zone() -> None:
    assert parse_time("2026-11-20T12:00:00+02:00") == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert format_time(datetime(2026, 11, 20, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-11-20T10:00:00Z"
    with pytest.raises(EnvelopeError, match="time zone"):
        parse_time("2026-11-20T10:00:00")


def test_derived_event_ids_are_deterministic_per_cause_and_type() -> None:
    def derive(cause: CloudEvent, type_: str) -> CloudEvent:
        return derived_event(cause=cause, source="retain/x", type=type_, subject="c-42", time=EVENT.time, data={})

    assert derive(EVENT, "a").id == derive(EVENT, "a").id
    assert derive(EVENT, "a").id != derive(EVENT, "b").id
    other = replace(EVENT, id="evt-2")
    assert derive(other, "a").id != derive(EVENT, "a").id
