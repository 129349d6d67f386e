"""Pure parts of ingest: row splitting, column mapping, token bucket, broker circuit."""

from __future__ import annotations

import pytest

from libs.common.ratelimit import TokenBucket, retry_after_header
from services.ingest.domain.circuit import Circuit
from services.ingest.domain.mapping import MappingError, RowMapping, parse_path
from services.ingest.domain.rows import RowSplitter


def test_csv_rows_survive_any_chunking_and_quoted_newlines() -> None:
    text = b'a,b\n1,"x\ny"\n\n2,z\r\n3\n'
    for size in (1, 2, 5, len(text)):
        splitter = RowSplitter("csv")
        rows = []
        for start in range(0, len(text), size):
            rows += splitter.feed(text[start : start + size])
        rows += splitter.feed(b"", final=True)
        assert [(r.line, r.values, r.error) for r in rows] == [
            (2, {"a": "1", "b": "x\ny"}, None),
            (5, {"a": "2", "b": "z"}, None),
            (6, None, "expected 2 columns, found 1"),
        ]


def test_json_lines_report_bad_lines_by_number() -> None:
    rows = RowSplitter("jsonl").feed(b'{"a": 1}\nnot json\n[1]\n{"b": 2}', final=True)
    assert [(r.line, r.values is not None) for r in rows] == [(1, True), (2, False), (3, False), (4, True)]


def test_mapping_builds_nested_events_with_stable_ids() -> None:
    mapping = RowMapping.parse(
        "purchase",
        "file-1",
        ["cust=customer_id", "total=data.amount", "q=data.items[0].quantity"],
        ["data.currency=USD"],
    )
    event = mapping.to_event({"cust": "c-1", "total": "9.5", "q": "2", "unused": "x"}, line=7)
    assert event["customer_id"] == "c-1"
    assert event["data"] == {"currency": "USD", "amount": "9.5", "items": [{"quantity": "2"}]}
    assert event["id"] == mapping.to_event({"cust": "other"}, line=7)["id"] != mapping.to_event({}, line=8)["id"]
    declared = RowMapping.parse("login", "file-1", ["event=id"])
    assert declared.to_event({"event": "e-9"}, line=2)["id"] == "e-9"


def test_mapping_errors() -> None:
    assert parse_path("data.items[2].price") == ("data", "items", 2, "price")
    for bad in (["nonsense"], ["a=b.c"], ["a=data..x"]):
        with pytest.raises(MappingError):
            RowMapping.parse("purchase", "f", bad)


def test_token_bucket_admits_burst_then_rate() -> None:
    bucket = TokenBucket.full(rate_per_s=2, burst_s=1, now=0)
    assert [bucket.take(0), bucket.take(0)] == [0, 0]
    assert bucket.take(0) == pytest.approx(0.5)
    assert bucket.take(0.5) == 0
    assert retry_after_header(0.2) == "1" and retry_after_header(1.5) == "2"


def test_circuit_opens_then_lets_one_probe_through() -> None:
    circuit = Circuit(open_for_s=2)
    assert circuit.allows(0)
    circuit.failed(now=0)
    assert not circuit.allows(1)
    assert circuit.allows(2.5)  # the probe
    assert not circuit.allows(2.6)  # everyone else waits for its verdict
    circuit.succeeded()
    assert circuit.allows(2.7) and not circuit.is_open
