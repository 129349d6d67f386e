"""Prometheus metrics every service exposes under /metrics; names follow Prometheus conventions."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY = Histogram(
    "retain_http_request_duration_seconds",
    "HTTP request latency by route template and status.",
    ["service", "method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
EVENTS_CONSUMED = Counter(
    "retain_events_consumed_total",
    "Events taken from Kafka, by outcome (processed, duplicate, dead_lettered, retried).",
    ["service", "topic", "type", "outcome"],
)
EVENTS_PRODUCED = Counter(
    "retain_events_produced_total", "Events acknowledged by the broker.", ["service", "topic", "type"]
)
PRODUCE_ERRORS = Counter(
    "retain_produce_errors_total", "Publishes the broker did not acknowledge.", ["service", "topic"]
)
CONSUMER_LAG = Gauge("retain_consumer_lag", "Records behind the partition end.", ["service", "topic", "partition"])
HANDLER_LATENCY = Histogram(
    "retain_handler_duration_seconds",
    "Time to handle one consumed batch of one partition, transaction included.",
    ["service", "topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("retain_outbox_backlog", "Outbox rows not yet published.", ["service"])
DEAD_LETTERED = Counter("retain_dead_lettered_total", "Messages sent to a dead-letter topic.", ["service", "topic"])
