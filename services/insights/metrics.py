"""Insights' Prometheus gauges: the KPIs of the current period, and each KPI's deviation in the last closed one."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# One refresh loop sets these; the value it set last is the current one.
KPI_CURRENT = Gauge(
    "retain_kpi",
    "A retention KPI of the current (still open) period.",
    ["kpi", "period"],
    multiprocess_mode="livemostrecent",
)
KPI_DEVIATION = Gauge(
    "retain_kpi_deviation",
    "(value - baseline) / |baseline| of a KPI in the last closed period; baseline = mean of the previous periods.",
    ["kpi", "period"],
    multiprocess_mode="livemostrecent",
)
KPI_ANOMALIES = Counter("retain_kpi_anomalies_total", "kpi.anomaly events emitted.", ["kpi", "period"])
DIRTY_PERIODS = Gauge(
    "retain_kpi_dirty_periods", "Periods waiting to be recomputed.", multiprocess_mode="livemostrecent"
)
