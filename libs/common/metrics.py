"""Prometheus metrics every service exposes under /metrics; names follow Prometheus conventions.

A service served by several worker processes (`RETAIN_HTTP_WORKERS`) runs prometheus_client's multiprocess
mode: each worker writes its samples to files under `PROMETHEUS_MULTIPROC_DIR` and whichever worker answers a
scrape reports all of them merged, so a scrape never sees one worker's share. Gauges therefore declare how
workers' values combine (`multiprocess_mode`; ignored with one process).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
Labels = TypeVar("Labels", bound=tuple[str, ...])

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
# A partition is consumed by one worker at a time: the value it reported last is the current one.
CONSUMER_LAG = Gauge(
    "retain_consumer_lag",
    "Records behind the partition end.",
    ["service", "topic", "partition"],
    multiprocess_mode="livemostrecent",
)
HANDLER_LATENCY = Histogram(
    "retain_handler_duration_seconds",
    "Time to handle one consumed batch of one partition, transaction included.",
    ["service", "topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Seconds, not records: how far behind a consumer is in time, which is what a customer waiting for a coupon feels.
EVENT_AGE = Histogram(
    "retain_event_age_seconds",
    "Age of an event when its consumer handled it (handling time minus ce_time), live clock only.",
    ["service", "topic"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
)
ACTION_LATENCY = Histogram(
    "retain_action_latency_seconds",
    "From the source event (purchase, crossing, feedback) to the coupon, message or alert it caused, live clock only.",
    ["service", "kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
# Every worker counts the same table.
OUTBOX_BACKLOG = Gauge(
    "retain_outbox_backlog", "Outbox rows not yet published.", ["service"], multiprocess_mode="livemax"
)
DEAD_LETTERED = Counter("retain_dead_lettered_total", "Messages sent to a dead-letter topic.", ["service", "topic"])
REDELIVERED = Counter(
    "retain_redelivered_total", "Published events re-queued for a broker that had lost them.", ["service"]
)
# Checked on every readiness probe and every scrape; the worst worker's view counts.
DEPENDENCY_UP = Gauge(
    "retain_dependency_up",
    "1 when the service reached the dependency (database, broker) at its last check, else 0.",
    ["service", "dependency"],
    multiprocess_mode="livemin",
)
MODEL_REFITS = Counter(
    "retain_model_refits_total",
    "Model refits by trigger (api, schedule) and outcome (succeeded, failed).",
    ["service", "trigger", "outcome"],
)
MODEL_LAST_REFIT = Gauge(
    "retain_model_last_refit_timestamp_seconds",
    "Unix time of the last refit that succeeded.",
    ["service"],
    multiprocess_mode="livemax",
)


class Snapshot:
    """A gauge of counts read from the database (customers per tier, actions per outcome): each `replace` states the
    whole picture, so a label set that has disappeared reads 0 rather than its last count.

    The database is the truth, so every replica reports the same figure and a restart loses nothing: dashboards take
    `max` over replicas, and `delta` over a window where they want a rate.
    """

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._seen: set[tuple[str, ...]] = set()

    def replace(self, counts: Mapping[Labels, float]) -> None:
        for gone in self._seen - set(counts):
            self.gauge.labels(*gone).set(0)
        for labels, value in counts.items():
            self.gauge.labels(*labels).set(value)
        self._seen |= set(counts)


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROCESS_DIR_ENV))


def exposition() -> bytes:
    """The text a scrape of /metrics gets: this process's metrics, or every worker's merged."""
    if not multiprocess_mode():
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def worker_exited() -> None:
    """Drops this worker's live gauges from the merged view (a restarted worker reports afresh)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
