"""Feedback's gauges: SLA breaches, counted from its own tables on a scrape."""

from __future__ import annotations

from prometheus_client import Gauge

from libs.common.metrics import Snapshot

# Every replica counts the same table: the value set last is the current one.
SLA_BREACHES = Snapshot(
    Gauge(
        "retain_sla_breaches",
        "SLA breaches since the start, by the customer's tier when the ticket opened and by clock "
        "(first_response, resolution).",
        ["tier", "clock"],
        multiprocess_mode="livemostrecent",
    )
)
