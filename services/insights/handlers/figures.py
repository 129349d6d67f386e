"""Recomputing the periods that consumed events touched, answering KPI and cohort queries, raising anomalies.

Figures are always read clean: a query first recomputes any period in its range that is missing or marked dirty,
and a background loop keeps the marked ones (and the gauges and anomaly checks) current in between.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from libs.common.clock import wall_clock
from libs.common.contracts import KpiAnomaly, derived
from services.insights import metrics
from services.insights.adapters import store
from services.insights.domain.kpis import SCALAR_KPIS, anomalies, kpis
from services.insights.domain.periods import (
    GRAINS,
    Grain,
    label,
    midnight,
    period_end,
    period_start,
    periods_apart,
    shift,
    utc_day,
)
from services.insights.handlers.churn import ChurnReports
from services.insights.handlers.deps import SOURCE, InsightsDeps

log = logging.getLogger(__name__)


class RangeTooLong(ValueError):
    """A query spanning more periods than `insights_max_periods` (once the defaults of `from` and `to` apply)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} periods per query")
        self.limit = limit


@dataclass
class Figures(InsightsDeps):
    async def recompute(self, grain: Grain, start: date) -> None:
        async with self.sessions() as session, session.begin():
            await store.lock_period(session, grain, start)
            mark = await store.dirty_mark(session, grain, start)
            counts = await store.compute_period(session, grain, start)
            await store.write_period(session, grain, start, counts, wall_clock())
            await store.clear_dirty(session, grain, start, mark)

    async def refresh_dirty(self) -> int:
        """Recomputes every dirty period that has begun; returns how many were recomputed."""
        today = utc_day(await self.now())
        current = {grain: period_start(today, grain) for grain in GRAINS}
        done = 0
        while True:
            async with self.sessions() as session:
                batch = await store.dirty_periods(session, up_to=current, limit=self.settings.insights_refresh_batch)
            if not batch:
                return done
            for grain, start in batch:
                await self.recompute(grain, start)
            done += len(batch)

    async def ensure(self, grain: Grain, first: date, last: date) -> dict[date, Any]:
        """Clean figures of every period from `first` to `last` (period starts), recomputing what is not."""
        async with self.sessions() as session:
            stored = await store.stored_figures(session, grain, first, last)
        starts = _starts(grain, first, last)
        stale = [start for start in starts if start not in stored or stored[start][1]]
        if not stale:
            return {start: stored[start][0] for start in starts}
        for start in stale:
            await self.recompute(grain, start)
        async with self.sessions() as session:
            stored = await store.stored_figures(session, grain, first, last)
        return {start: stored[start][0] for start in starts}

    # -- queries ----------------------------------------------------------------------------------------------

    async def range_of(self, grain: Grain, first: date | None, last: date | None) -> tuple[date, date, datetime]:
        """Period starts of the queried range, cut at the period holding "now" (later ones have not begun)."""
        moment = await self.now()
        current = period_start(utc_day(moment), grain)
        last_start = min(period_start(last, grain), current) if last is not None else current
        if first is not None:
            first_start = period_start(first, grain)
        else:
            try:
                first_start = shift(last_start, grain, 1 - self.settings.insights_default_periods)
            except (ValueError, OverflowError):  # the default periods would begin before year 1
                first_start = period_start(date.min, grain)
        self._within_limit(grain, first_start, last_start)
        return first_start, last_start, moment

    def _within_limit(self, grain: Grain, first_start: date, last_start: date) -> None:
        limit = self.settings.insights_max_periods
        if periods_apart(first_start, last_start, grain) >= limit:
            raise RangeTooLong(limit)

    async def kpi_rows(self, grain: Grain, first: date | None, last: date | None) -> dict[str, Any]:
        first_start, last_start, moment = await self.range_of(grain, first, last)
        figures = await self.ensure(grain, first_start, last_start) if first_start <= last_start else {}
        rows = [{**_period(grain, start, moment), **kpis(counts)} for start, counts in sorted(figures.items())]
        return {"period": grain.value, "as_of": moment, "rows": rows}

    async def cohort_rows(self, grain: Grain, first: date | None, last: date | None) -> dict[str, Any]:
        first_start, last_start, moment = await self.range_of(grain, first, last)
        current = period_start(utc_day(moment), grain)
        cohorts: list[dict[str, Any]] = []
        if first_start <= last_start:
            self._within_limit(grain, first_start, current)  # cohorts are followed up to now
            await self.ensure(grain, first_start, current)
            async with self.sessions() as session:
                cells = await store.cohort_cells(session, grain, first_start, last_start)
            by_cohort: dict[date, dict[date, tuple[int, Any]]] = {}
            for cohort, start, active, revenue in cells:
                by_cohort.setdefault(cohort, {})[start] = (active, revenue)
            for cohort in _starts(grain, first_start, last_start):
                cohorts.append(_cohort(grain, cohort, by_cohort.get(cohort, {}), current))
        return {"period": grain.value, "as_of": moment, "cohorts": cohorts}

    async def anomaly_rows(self, grain: Grain, first: date | None, last: date | None) -> dict[str, Any]:
        first_start, last_start, moment = await self.range_of(grain, first, last)
        async with self.sessions() as session:
            found = await store.anomalies_between(session, grain, first_start, last_start)
        rows = [{**_period(grain, row.pop("period_start"), moment), **row} for row in found]
        return {"period": grain.value, "as_of": moment, "anomalies": rows}

    # -- anomalies and gauges ---------------------------------------------------------------------------------

    async def check_anomalies(self) -> int:
        """Looks at every closed period not yet checked; emits `kpi.anomaly` once per KPI and period."""
        moment = await self.now()
        today = utc_day(moment)
        raised = 0
        n = self.settings.insights_anomaly_baseline_periods
        async with self.sessions() as session:
            first_day = await store.first_purchase_day(session)
        if first_day is None:
            return 0
        for grain in self.settings.insights_anomaly_grains:
            async with self.sessions() as session:
                closed = await store.unchecked_closed_periods(session, grain, today)
            earliest = period_start(first_day, grain)
            for start in closed:
                baseline_start = shift(start, grain, -n)
                previous = []
                # The first period counted is no baseline: everyone in it is new only because counting began there.
                if baseline_start > earliest:
                    figures = await self.ensure(grain, baseline_start, shift(start, grain, -1))
                    previous = [kpis(figures[s]) for s in sorted(figures)]
                raised += await self._check_period(grain, start, previous, moment)
        return raised

    async def _check_period(self, grain: Grain, start: date, previous: list[dict[str, Any]], moment: datetime) -> int:
        raised = 0
        async with self.sessions() as session, session.begin():
            await store.lock_period(session, grain, start)
            stored = await store.stored_figures(session, grain, start, start)
            if start not in stored or stored[start][1]:
                return 0  # changed since it was listed: checked after its next recompute
            current = kpis(stored[start][0])
            found = anomalies(
                current,
                previous,
                baseline_periods=self.settings.insights_anomaly_baseline_periods,
                threshold=self.settings.insights_anomaly_threshold,
            )
            for anomaly in found:
                topic, event = derived(
                    KpiAnomaly(
                        kpi=anomaly.kpi,
                        period=grain.value,
                        period_start=start,
                        period_label=label(start, grain),
                        value=anomaly.value,
                        baseline=anomaly.baseline,
                        deviation=anomaly.deviation,
                        baseline_periods=self.settings.insights_anomaly_baseline_periods,
                        threshold=self.settings.insights_anomaly_threshold,
                    ),
                    cause=f"{grain.value}:{start.isoformat()}:{anomaly.kpi}",
                    source=SOURCE,
                    subject=anomaly.kpi,
                    time=midnight(period_end(start, grain)),
                )
                values = (anomaly.value, anomaly.baseline, anomaly.deviation)
                if await store.record_anomaly(session, grain, start, anomaly.kpi, values, event.id, wall_clock()):
                    await self.outbox.add(session, topic, event)
                    metrics.KPI_ANOMALIES.labels(anomaly.kpi, grain.value).inc()
                    raised += 1
            await store.mark_checked(session, grain, start)
        deviations = {a.kpi: a.deviation for a in found}
        for kpi in SCALAR_KPIS:
            if previous:
                metrics.KPI_DEVIATION.labels(kpi, grain.value).set(
                    deviations.get(kpi, _deviation(kpi, current, previous))
                )
        return raised

    async def update_gauges(self) -> None:
        moment = await self.now()
        for grain in GRAINS:
            start = period_start(utc_day(moment), grain)
            figures = await self.ensure(grain, start, start)
            values = kpis(figures[start])
            for kpi in SCALAR_KPIS:
                value = values.get(kpi)
                if isinstance(value, int | float):
                    metrics.KPI_CURRENT.labels(kpi, grain.value).set(value)
        async with self.sessions() as session:
            metrics.DIRTY_PERIODS.set(await store.dirty_count(session))

    async def refresh_once(self) -> None:
        await self.refresh_dirty()
        await self.check_anomalies()
        await ChurnReports(self.settings, self.sessions, self.outbox).announce()
        await self.update_gauges()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refreshing figures failed; retrying")
            await asyncio.sleep(self.settings.insights_refresh_interval_s)


def _deviation(kpi: str, current: dict[str, Any], previous: list[dict[str, Any]]) -> float:
    values = [row.get(kpi) for row in previous]
    value = current.get(kpi)
    if not isinstance(value, int | float) or not all(isinstance(v, int | float) for v in values):
        return 0.0
    baseline = sum(float(v) for v in values if isinstance(v, int | float)) / len(values)
    return 0.0 if baseline == 0 else (float(value) - baseline) / abs(baseline)


def _starts(grain: Grain, first: date, last: date) -> list[date]:
    starts, start = [], first
    while start <= last:
        starts.append(start)
        start = shift(start, grain, 1)
    return starts


def _period(grain: Grain, start: date, moment: datetime) -> dict[str, Any]:
    end = period_end(start, grain)
    return {"period": label(start, grain), "start": start, "end": end, "complete": midnight(end) <= moment}


def _cohort(grain: Grain, cohort: date, cells: dict[date, tuple[int, Any]], current: date) -> dict[str, Any]:
    size = cells.get(cohort, (0, 0))[0]
    periods = []
    cumulative = 0.0
    k, start = 0, cohort
    while start <= current:
        active, revenue = cells.get(start, (0, 0))
        cumulative += float(revenue)
        periods.append(
            {
                "k": k,
                "period": label(start, grain),
                "active": active,
                "share_active": None if size == 0 else active / size,
                "revenue": float(revenue),
                "revenue_per_customer": None if size == 0 else float(revenue) / size,
                "cumulative_revenue_per_customer": None if size == 0 else cumulative / size,
            }
        )
        k, start = k + 1, shift(start, grain, 1)
    return {"cohort": label(cohort, grain), "start": cohort, "customers": size, "periods": periods}
