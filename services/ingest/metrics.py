"""Ingest-specific Prometheus metrics (the shared ones live in libs.common.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter(
    "retain_ingest_events_total",
    "Events posted to ingest by outcome (accepted, duplicate, rejected), type and source.",
    ["type", "source", "outcome"],
)
BATCH_SIZE = Histogram(
    "retain_ingest_batch_size",
    "Items per batch request or per import chunk.",
    ["route"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
PUBLISH_LATENCY = Histogram(
    "retain_ingest_publish_seconds",
    "Time from handing a group of events to the producer until the broker acknowledged them all.",
    ["path"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# Every worker counts the same table.
OUTBOX_DEPTH = Gauge(
    "retain_ingest_outbox_depth", "Accepted events in the event log not yet published.", multiprocess_mode="livemax"
)
# Each worker keeps its own circuit: 1 when any of them sends requests straight to the outbox.
BROKER_CIRCUIT_OPEN = Gauge(
    "retain_ingest_broker_circuit_open",
    "1 while requests skip the broker and go straight to the outbox.",
    multiprocess_mode="livemax",
)
RATE_LIMITED = Counter("retain_ingest_rate_limited_total", "Requests answered 429, by source.", ["source"])
REPLAYED = Counter("retain_ingest_replayed_total", "Events re-published from the event log by `retain replay`.")
