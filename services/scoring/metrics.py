"""Scoring's gauges: how the scored customers are graded now, counted from its `scores` table on a scrape."""

from __future__ import annotations

from prometheus_client import Gauge

from libs.common.metrics import Snapshot

# Every replica counts the same table: the value set last is the current one.
CUSTOMERS = Snapshot(
    Gauge(
        "retain_customers",
        "Scored customers by value tier and lifecycle stage.",
        ["tier", "stage"],
        multiprocess_mode="livemostrecent",
    )
)
CHURN_RISK = Snapshot(
    Gauge(
        "retain_customers_by_churn_risk",
        "Scored customers by churn-risk band (`risk`: the band's lower bound, bands a tenth wide).",
        ["risk"],
        multiprocess_mode="livemostrecent",
    )
)
