"""The churned-customers report of a period, and its announcement (`churn.report_ready`) once the period closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from libs.common.clock import wall_clock
from libs.common.contracts import ChurnReportReady, derived
from services.insights.adapters import store
from services.insights.domain.churn import lifts, over_represented
from services.insights.domain.periods import Grain, label, midnight, period_end, period_start, shift, utc_day
from services.insights.handlers.deps import SOURCE, InsightsDeps

REPORT_SUBJECT = "churned"


@dataclass
class ChurnReports(InsightsDeps):
    async def last_closed(self, grain: Grain) -> date:
        """Start of the newest period that has ended as of the clock."""
        return shift(period_start(utc_day(await self.now()), grain), grain, -1)

    async def report(self, grain: Grain, at: date | None) -> dict[str, Any]:
        """The report of the period holding `at` (default: the last closed one)."""
        moment = await self.now()
        start = period_start(at, grain) if at is not None else await self.last_closed(grain)
        end = period_end(start, grain)
        counts = await self._counts(grain, start)
        rows = lifts(counts.churned_traits, counts.base_traits, counts.churned, counts.base)
        strongest = over_represented(
            rows, min_lift=self.settings.insights_churn_min_lift, min_churned=self.settings.insights_churn_min_customers
        )
        return {
            "period": grain.value,
            "label": label(start, grain),
            "start": start,
            "end": end,
            "complete": midnight(end) <= moment,
            "as_of": moment,
            "churned": counts.churned,
            "active_base": counts.base,
            "clv_lost": counts.clv_lost,
            "over_represented": [r.as_dict() for r in strongest],
            "traits": [r.as_dict() for r in rows],
            "top_clv_lost": [_customer(row) for row in counts.top],
        }

    async def _counts(self, grain: Grain, start: date) -> store.ChurnCounts:
        """The report's counts as kept since they were last counted, or counted now (and kept)."""
        async with self.sessions() as session:
            max_age = self.settings.insights_churn_report_max_age_s
            counts = await store.cached_churn_counts(session, grain, start, max_age_s=max_age)
        if counts is not None:
            return counts
        async with self.sessions() as session, session.begin():
            token = await store.claim_churn_counts(session, grain, start)
        async with self.sessions() as session, session.begin():
            counts = await store.churn_counts(session, grain, start, top=self.settings.insights_churn_top)
            await store.keep_churn_counts(session, grain, start, token, counts)
        return counts

    async def announce(self) -> int:
        """Emits `churn.report_ready` once for each closed period since scores began (a few per call)."""
        grain = self.settings.insights_churn_report_grain
        async with self.sessions() as session:
            first = await store.first_score_at(session)
            done = await store.announced_reports(session, grain)
        if first is None:
            return 0
        last = await self.last_closed(grain)
        pending: list[date] = []
        start = period_start(utc_day(first), grain)
        while start <= last and len(pending) < self.settings.insights_refresh_batch:
            if start not in done:
                pending.append(start)
            start = shift(start, grain, 1)
        for start in pending:
            await self._announce(grain, start)
        return len(pending)

    async def _announce(self, grain: Grain, start: date) -> None:
        # The event carries the totals only: the traits are counted when the report is read.
        async with self.sessions() as session, session.begin():
            churned, base, clv_lost = await store.churn_totals(session, grain, start)
        topic, event = derived(
            ChurnReportReady(
                period=grain.value,
                period_start=start,
                period_label=label(start, grain),
                churned=churned,
                active_base=base,
                clv_lost=clv_lost,
                report=f"/v1/reports/churned?period={grain.value}&at={start.isoformat()}",
            ),
            cause=f"churn-report:{grain.value}:{start.isoformat()}",
            source=SOURCE,
            subject=REPORT_SUBJECT,
            time=midnight(period_end(start, grain)),
        )
        async with self.sessions() as session, session.begin():
            if await store.record_report(session, grain, start, churned, event.id, wall_clock()):
                await self.outbox.add(session, topic, event)


def _customer(row: dict[str, Any]) -> dict[str, Any]:
    """A churned customer with why (the churn reasons of their score) and their last interactions."""
    reasons = row.get("reasons") or []
    return {
        "customer_id": row["customer_id"],
        "clv": row["clv"],
        "tier": row["tier"],
        "churned_at": row["churned_at"],
        "reasons": [r for r in reasons if isinstance(r, dict)],
        "region": row["region"],
        "favourite_category": row["favourite_category"],
        "channel": row["channel"],
        "open_tickets": row["open_tickets"] or 0,
        "last_nps": row["last_nps"],
        "last_purchase_day": row["last_purchase_day"],
        "last_login_at": row["last_login_at"],
        "last_survey_answer_at": row["last_answer_at"],
    }
