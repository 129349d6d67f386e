"""All of insights' SQL: storing what it consumes, deriving purchase days, and computing a period's figures."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.unnest import upsert
from services.insights.adapters import tables
from services.insights.adapters.tables import (
    aliases,
    customer_traits,
    purchases,
    refunds,
    scores,
    survey_scores,
)
from services.insights.domain.churn import BASE_STAGES, TRAITS
from services.insights.domain.facts import DirtyPeriod, Purchase, Refund, Score, SurveyScore, Traits
from services.insights.domain.kpis import PeriodCounts
from services.insights.domain.periods import Grain, midnight, period_end, shift

# Two-key advisory locks in a class of their own (the one-key space holds migrations and refits).
_LOCK_CLASS = 0x494E5349  # "INSI"
_ERASURE_LOCK = 1
_REPORT_COUNTS_LOCK = 2
_DECILES = [round(0.1 * n, 1) for n in range(1, 10)]


async def lock_for_counting(session: AsyncSession) -> None:
    """Shared by every consumer batch: an erasure (exclusive) waits for batches in flight and holds off new ones,
    so no batch can write a customer back after their erasure deleted them."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:c, :k)"), {"c": _LOCK_CLASS, "k": _ERASURE_LOCK})


async def lock_for_erasure(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": _LOCK_CLASS, "k": _ERASURE_LOCK})


async def lock_period(session: AsyncSession, grain: Grain, start: date) -> None:
    """Held while one period is recomputed, so two recomputes of it never interleave their writes."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:c, hashtext(:key))"), {"c": _LOCK_CLASS, "key": f"{grain}:{start}"}
    )


# -- clock and erasures -----------------------------------------------------------------------------------------


async def advance_clock(session: AsyncSession, newest: datetime) -> None:
    await session.execute(
        text(
            "INSERT INTO insights.clock (id, newest_event_at) VALUES (1, :at) ON CONFLICT (id) DO UPDATE "
            "SET newest_event_at = excluded.newest_event_at WHERE clock.newest_event_at < excluded.newest_event_at"
        ),
        {"at": newest},
    )


async def newest_event_at(session: AsyncSession) -> datetime | None:
    result: datetime | None = await session.scalar(text("SELECT newest_event_at FROM insights.clock WHERE id = 1"))
    return result


async def erased_at(session: AsyncSession, customer_ids: Sequence[str]) -> dict[str, datetime]:
    rows = await session.execute(
        text("SELECT customer_id, erased_at FROM insights.erasures WHERE customer_id = ANY(CAST(:ids AS text[]))"),
        {"ids": list(customer_ids)},
    )
    return {row.customer_id: row.erased_at for row in rows}


async def erase(session: AsyncSession, customer_id: str, at: datetime) -> list[date]:
    """Deletes everything about the customer; returns the days whose figures included them."""
    params = {"id": customer_id}
    days = [
        row.day
        for row in await session.execute(
            text("DELETE FROM insights.customer_days WHERE customer_id = :id RETURNING day"), params
        )
    ]
    await session.execute(
        text(
            "DELETE FROM insights.refunds WHERE customer_id = :id "
            "OR order_id IN (SELECT order_id FROM insights.purchases WHERE customer_id = :id)"
        ),
        params,
    )
    await session.execute(text("DELETE FROM insights.purchases WHERE customer_id = :id"), params)
    await session.execute(text("DELETE FROM insights.customers WHERE customer_id = :id"), params)
    await session.execute(text("DELETE FROM insights.customer_traits WHERE customer_id = :id"), params)
    await session.execute(text("DELETE FROM insights.cluster_members WHERE customer_id = :id"), params)
    await session.execute(text("DELETE FROM insights.stage_runs WHERE customer_id = :id"), params)
    await forget_churn_counts(session, None)
    await aliases.forget(session, customer_id)
    for statement in (
        "DELETE FROM insights.scores WHERE customer_id = :id RETURNING scored_at AS at",
        "DELETE FROM insights.survey_scores WHERE customer_id = :id RETURNING answered_at AS at",
    ):
        days.extend(row.at.date() for row in await session.execute(text(statement), params))
    await session.execute(
        text(
            "INSERT INTO insights.erasures (customer_id, erased_at) VALUES (:id, :at) ON CONFLICT (customer_id) "
            "DO UPDATE SET erased_at = GREATEST(erasures.erased_at, excluded.erased_at)"
        ),
        {**params, "at": at},
    )
    return days


# -- joined ids ---------------------------------------------------------------------------------------------------


async def resolve(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, str]:
    """The customer each id stands for (itself unless profile joined it to another)."""
    return await aliases.resolve_many(session, set(customer_ids))


async def join(session: AsyncSession, from_id: str, into_id: str) -> tuple[str, list[date], date | None]:
    """Records that `from_id` is `into_id` and moves what insights holds under it: its orders, refunds and survey
    answers move over, its scores, traits and cluster go (scoring rescores and profile re-announces the joined
    customer).

    Returns the customer, the purchase days counted under `from_id` before, and the earliest day moved (None when
    no order moved); the caller re-derives the customer's days from that day.
    """
    into_id = await aliases.join(session, from_id, into_id)
    if into_id == from_id:
        return into_id, [], None
    params = {"from": from_id, "into": into_id}
    days = [
        row.day
        for row in await session.execute(
            text("DELETE FROM insights.customer_days WHERE customer_id = :from RETURNING day"), params
        )
    ]
    await session.execute(text("DELETE FROM insights.customers WHERE customer_id = :from"), params)
    moved: date | None = await session.scalar(
        text(
            "WITH moved AS (UPDATE insights.purchases SET customer_id = :into WHERE customer_id = :from RETURNING day) "
            "SELECT min(day) FROM moved"
        ),
        params,
    )
    for table in ("survey_scores", "refunds"):
        await session.execute(
            text(f"UPDATE insights.{table} SET customer_id = :into WHERE customer_id = :from"), params
        )
    for table in ("scores", "stage_runs", "customer_traits", "cluster_members"):
        await session.execute(text(f"DELETE FROM insights.{table} WHERE customer_id = :from"), params)
    await forget_churn_counts(session, None)
    return into_id, days, moved


# -- purchases ----------------------------------------------------------------------------------------------------


async def stored_orders(session: AsyncSession, order_ids: Sequence[str]) -> dict[str, Purchase]:
    """The stored version of each order id, locked until the transaction ends."""
    rows = await session.execute(
        text(
            "SELECT order_id, customer_id, purchased_at, amount, event_id FROM insights.purchases "
            "WHERE order_id = ANY(CAST(:ids AS text[])) ORDER BY order_id FOR UPDATE"
        ),
        {"ids": list(order_ids)},
    )
    return {
        row.order_id: Purchase(row.order_id, row.customer_id, row.purchased_at, row.amount, row.event_id)
        for row in rows
    }


async def write_purchases(session: AsyncSession, orders: Sequence[Purchase]) -> None:
    """Inserts or replaces whole orders (the caller decided which version of each order wins)."""
    await upsert(
        session,
        purchases,
        [
            {
                "order_id": p.order_id,
                "customer_id": p.customer_id,
                "purchased_at": p.at,
                "day": p.day,
                "amount": p.amount,
                "event_id": p.event_id,
                "coupon_code": p.coupon_code,
            }
            for p in orders
        ],
        key=["order_id"],
        update=["customer_id", "purchased_at", "day", "amount", "event_id", "coupon_code"],
    )


async def write_refunds(session: AsyncSession, given_back: Sequence[Refund]) -> set[str]:
    """Keeps each refund event once; returns the order ids of the refunds not stored before."""
    rows = await upsert(
        session,
        refunds,
        [
            {
                "event_id": r.event_id,
                "customer_id": r.customer_id,
                "order_id": r.order_id,
                "refunded_at": r.at,
                "amount": r.amount,
            }
            for r in given_back
        ],
        key=["event_id"],
        returning=["order_id"],
    )
    return {row.order_id for row in rows}


# An order counts for its amount net of its refunds (not below 0); one refunded in full is no purchase at all (as
# scoring counts it), so it makes no one active and no purchase day. An order of amount 0 stays a purchase.
_NET = "greatest(p.amount - coalesce(r.refunded, 0), 0)"
_NOT_RETURNED = "NOT (p.amount > 0 AND coalesce(r.refunded, 0) >= p.amount)"

_REDERIVE_DAYS_SQL = f"""
INSERT INTO insights.customer_days (customer_id, day, amount, orders, prev_day)
SELECT g.customer_id, g.day, g.amount, g.orders, coalesce(
    lag(g.day) OVER (PARTITION BY g.customer_id ORDER BY g.day),
    (SELECT max(k.day) FROM insights.customer_days k WHERE k.customer_id = g.customer_id AND k.day < g.since)
)
FROM (
    SELECT p.customer_id, p.day, sum({_NET}) AS amount, count(*) AS orders, u.since
    FROM unnest(CAST(:ids AS text[]), CAST(:since AS date[])) AS u(customer_id, since)
    JOIN insights.purchases p ON p.customer_id = u.customer_id AND p.day >= u.since
    LEFT JOIN LATERAL (
        SELECT sum(amount) AS refunded FROM insights.refunds WHERE refunds.order_id = p.order_id
    ) r ON true
    WHERE {_NOT_RETURNED}
    GROUP BY p.customer_id, p.day, u.since
) g
RETURNING customer_id, day
"""

# After the days are rebuilt: a customer's first purchase day is their first day with an order that counts.
_REDERIVE_FIRST_DAYS_SQL = """
INSERT INTO insights.customers (customer_id, first_day)
SELECT u.customer_id, f.first_day FROM unnest(CAST(:ids AS text[])) AS u(customer_id)
CROSS JOIN LATERAL (
    SELECT min(day) AS first_day FROM insights.customer_days d WHERE d.customer_id = u.customer_id
) f
WHERE f.first_day IS NOT NULL
ON CONFLICT (customer_id) DO UPDATE SET first_day = excluded.first_day
"""


async def rederive_customers(session: AsyncSession, since: Mapping[str, date]) -> dict[str, list[date]]:
    """Rebuilds the purchase days of these customers from `since[customer]` on, and their first purchase day.

    Days before `since` are unchanged and kept (the first rebuilt day takes its previous day from them), so a
    purchase today costs today's rows, not the customer's history. Returns every day from `since` on that each
    customer had before or has now: the periods holding them may have changed.
    """
    ordered = sorted(since.items())
    params = {"ids": [customer for customer, _ in ordered], "since": [day for _, day in ordered]}
    days: dict[str, list[date]] = {}
    for statement in (
        "DELETE FROM insights.customer_days d USING unnest(CAST(:ids AS text[]), CAST(:since AS date[])) "
        "AS u(customer_id, since) WHERE d.customer_id = u.customer_id AND d.day >= u.since "
        "RETURNING d.customer_id, d.day",
        _REDERIVE_DAYS_SQL,
    ):
        for row in await session.execute(text(statement), params):
            days.setdefault(row.customer_id, []).append(row.day)
    await session.execute(
        text(
            "DELETE FROM insights.customers c USING unnest(CAST(:ids AS text[])) AS u(customer_id) "
            "WHERE c.customer_id = u.customer_id "
            "AND NOT EXISTS (SELECT 1 FROM insights.customer_days d WHERE d.customer_id = u.customer_id)"
        ),
        {"ids": params["ids"]},
    )
    await session.execute(text(_REDERIVE_FIRST_DAYS_SQL), {"ids": params["ids"]})
    return days


async def rederive_everything(session: AsyncSession) -> tuple[date, date] | None:
    """Rebuilds purchase days and first purchases of every customer at once (after a bulk load of purchases);
    returns the first and last purchase day."""
    await session.execute(text("TRUNCATE insights.customer_days, insights.customers"))
    await session.execute(
        text(
            "INSERT INTO insights.customer_days (customer_id, day, amount, orders, prev_day) "
            f"SELECT p.customer_id, p.day, sum({_NET}), count(*), "
            "lag(p.day) OVER (PARTITION BY p.customer_id ORDER BY p.day) FROM insights.purchases p "
            "LEFT JOIN (SELECT order_id, sum(amount) AS refunded FROM insights.refunds GROUP BY order_id) r "
            f"USING (order_id) WHERE {_NOT_RETURNED} GROUP BY p.customer_id, p.day"
        )
    )
    await session.execute(
        text(
            "INSERT INTO insights.customers (customer_id, first_day) "
            "SELECT customer_id, min(day) FROM insights.customer_days GROUP BY customer_id"
        )
    )
    await session.execute(text("ANALYZE insights.customer_days"))
    await session.execute(text("ANALYZE insights.customers"))
    row = (await session.execute(text("SELECT min(day) AS first, max(day) AS last FROM insights.customer_days"))).one()
    if row is None or row.first is None:
        return None
    return row.first, row.last


async def first_purchase_day(session: AsyncSession) -> date | None:
    result: date | None = await session.scalar(text("SELECT min(first_day) FROM insights.customers"))
    return result


# -- scores and survey answers ------------------------------------------------------------------------------------


async def write_scores(session: AsyncSession, received: Sequence[Score]) -> None:
    await upsert(
        session,
        scores,
        [
            {
                "customer_id": s.customer_id,
                "scored_at": s.at,
                "event_id": s.event_id,
                "tier": s.tier,
                "clv": s.clv,
                "stage": s.stage,
                "reasons": list(s.reasons),
            }
            for s in received
        ],
        key=["customer_id", "scored_at", "event_id"],
    )
    await rebuild_stage_runs(session, {s.customer_id for s in received if s.stage is not None})
    if received:
        await forget_churn_counts(session, min(s.at for s in received))


# Runs of equal stage and tier over a customer's scores in (time, event id) order; `until` is the next run's start.
_STAGE_RUNS_SQL = """
INSERT INTO insights.stage_runs (customer_id, since, event_id, until, stage, tier)
SELECT customer_id, scored_at, event_id,
       lead(scored_at) OVER (PARTITION BY customer_id ORDER BY scored_at, event_id), stage, tier
FROM (
    SELECT customer_id, scored_at, event_id, stage, tier, lag(stage) OVER w AS prev_stage,
           lag(tier) OVER w AS prev_tier, row_number() OVER w AS n
    FROM insights.scores WHERE stage IS NOT NULL {only}
    WINDOW w AS (PARTITION BY customer_id ORDER BY scored_at, event_id)
) s
WHERE n = 1 OR stage IS DISTINCT FROM prev_stage OR tier IS DISTINCT FROM prev_tier
"""


async def rebuild_stage_runs(session: AsyncSession, customer_ids: Iterable[str] | None) -> None:
    """Rebuilds the stage runs of these customers from all their scores (None: of everyone, after a bulk load), so
    a late score lands in its place whatever the arrival order."""
    if customer_ids is None:
        await session.execute(text("TRUNCATE insights.stage_runs"))
        await session.execute(text(_STAGE_RUNS_SQL.format(only="")))
        await session.execute(text("ANALYZE insights.stage_runs"))
        return
    ids = sorted(set(customer_ids))
    if not ids:
        return
    only = "AND customer_id = ANY(CAST(:ids AS text[]))"
    await session.execute(text(f"DELETE FROM insights.stage_runs WHERE 1 = 1 {only}"), {"ids": ids})
    await session.execute(text(_STAGE_RUNS_SQL.format(only=only)), {"ids": ids})


async def write_survey_scores(session: AsyncSession, answers: Sequence[SurveyScore]) -> None:
    await upsert(
        session,
        survey_scores,
        [
            {
                "event_id": a.event_id,
                "customer_id": a.customer_id,
                "answered_at": a.at,
                "kind": a.kind,
                "score": a.score,
            }
            for a in answers
        ],
        key=["event_id"],
    )


# -- dirty periods ------------------------------------------------------------------------------------------------


async def mark_dirty(session: AsyncSession, periods: Iterable[DirtyPeriod]) -> None:
    ordered = sorted(set(periods))
    if not ordered:
        return
    await session.execute(
        text(
            "INSERT INTO insights.dirty_periods (grain, period_start, mark) "
            "SELECT g, s, :mark FROM unnest(CAST(:grains AS text[]), CAST(:starts AS date[])) AS u(g, s) "
            "ON CONFLICT (grain, period_start) DO UPDATE SET mark = excluded.mark"
        ),
        {"grains": [g.value for g, _ in ordered], "starts": [s for _, s in ordered], "mark": uuid.uuid4().hex},
    )


async def dirty_periods(session: AsyncSession, *, up_to: dict[Grain, date], limit: int) -> list[tuple[Grain, date]]:
    """Dirty periods that have begun (per grain, starting on or before `up_to`), oldest first."""
    rows = await session.execute(
        text(
            "SELECT grain, period_start FROM insights.dirty_periods d JOIN unnest(CAST(:grains AS text[]), "
            "CAST(:last AS date[])) AS u(g, last) ON d.grain = u.g AND d.period_start <= u.last "
            "ORDER BY period_start, grain LIMIT :limit"
        ),
        {"grains": [g.value for g in up_to], "last": list(up_to.values()), "limit": limit},
    )
    return [(Grain(row.grain), row.period_start) for row in rows]


async def dirty_mark(session: AsyncSession, grain: Grain, start: date) -> str | None:
    mark: str | None = await session.scalar(
        text("SELECT mark FROM insights.dirty_periods WHERE grain = :g AND period_start = :s"),
        {"g": grain.value, "s": start},
    )
    return mark


async def clear_dirty(session: AsyncSession, grain: Grain, start: date, mark: str | None) -> None:
    """Clears the mark read before recomputing; a mark set since stays, and the period is recomputed again."""
    if mark is not None:
        await session.execute(
            text("DELETE FROM insights.dirty_periods WHERE grain = :g AND period_start = :s AND mark = :m"),
            {"g": grain.value, "s": start, "m": mark},
        )


# -- a period's figures -------------------------------------------------------------------------------------------

# The period's active customers, with their revenue in it and their first purchase day: computed once per recompute
# and read by the KPI, score and cohort statements of the same transaction.
_PERIOD_CUSTOMERS_SQL = """
CREATE TEMPORARY TABLE period_customers ON COMMIT DROP AS
SELECT d.customer_id, d.revenue, c.first_day FROM (
    SELECT customer_id, sum(amount) AS revenue FROM insights.customer_days
    WHERE day >= :start AND day < :end GROUP BY customer_id
) d JOIN insights.customers c USING (customer_id)
"""

_CUSTOMERS_SQL = """
WITH prev AS (
    SELECT DISTINCT customer_id FROM insights.customer_days WHERE day >= :prev_start AND day < :start
), joined AS (
    SELECT cur.revenue, cur.first_day >= :start AS is_new, prev.customer_id IS NOT NULL AS was_active
    FROM period_customers cur LEFT JOIN prev USING (customer_id)
)
SELECT (SELECT count(*) FROM prev) AS active_start, count(*) AS active_end,
       count(*) FILTER (WHERE is_new) AS new, count(*) FILTER (WHERE was_active) AS retained,
       coalesce(sum(revenue), 0) AS revenue, coalesce(sum(revenue) FILTER (WHERE is_new), 0) AS revenue_new
FROM joined
"""

_GAPS_SQL = """
SELECT count(*) AS repurchases, coalesce(sum(day - prev_day), 0) AS gap_sum,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY day - prev_day) AS gap_median
FROM insights.customer_days WHERE day >= :start AND day < :end AND prev_day IS NOT NULL
"""

# The tier and CLV each active customer had at the end of the period: their last score before it.
_SCORES_SQL = """
WITH latest AS (
    SELECT coalesce(s.tier, 'unscored') AS tier, s.clv FROM period_customers cur LEFT JOIN LATERAL (
        SELECT tier, clv FROM insights.scores
        WHERE scores.customer_id = cur.customer_id AND scores.scored_at < :end_at
        ORDER BY scored_at DESC, event_id DESC LIMIT 1
    ) s ON true
)
SELECT tier, GROUPING(tier) AS overall, count(*) AS customers, avg(clv) AS clv_mean,
       percentile_cont(CAST(:deciles AS float8[])) WITHIN GROUP (ORDER BY clv) AS clv_deciles
FROM latest GROUP BY GROUPING SETS ((tier), ())
"""

_SURVEYS_SQL = """
SELECT count(*) FILTER (WHERE kind = 'nps') AS nps_responses,
       count(*) FILTER (WHERE kind = 'nps' AND score >= 9) AS nps_promoters,
       count(*) FILTER (WHERE kind = 'nps' AND score <= 6) AS nps_detractors,
       count(*) FILTER (WHERE kind = 'csat') AS csat_responses,
       count(*) FILTER (WHERE kind = 'csat' AND score >= 4) AS csat_satisfied
FROM insights.survey_scores WHERE answered_at >= :start_at AND answered_at < :end_at
"""

_COHORT_COLUMN_SQL = """
INSERT INTO insights.cohort_cells (grain, cohort_start, period_start, active, revenue)
SELECT :grain, CAST(date_trunc(:grain, CAST(first_day AS timestamp)) AS date), :start, count(*), sum(revenue)
FROM period_customers GROUP BY 2
"""


async def compute_period(session: AsyncSession, grain: Grain, start: date) -> PeriodCounts:
    end = period_end(start, grain)
    bounds = {"start": start, "end": end}
    await session.execute(text("DROP TABLE IF EXISTS period_customers"))
    await session.execute(text(_PERIOD_CUSTOMERS_SQL), bounds)
    await session.execute(text("ANALYZE period_customers"))
    prev_start = shift(start, grain, -1)
    customers = (await session.execute(text(_CUSTOMERS_SQL), {**bounds, "prev_start": prev_start})).one()
    gaps = (await session.execute(text(_GAPS_SQL), bounds)).one()
    by_tier: dict[str, int] = {}
    clv_mean: float | None = None
    clv_deciles: list[float] | None = None
    for row in await session.execute(text(_SCORES_SQL), {**bounds, "end_at": midnight(end), "deciles": _DECILES}):
        if row.overall:
            clv_mean = None if row.clv_mean is None else float(row.clv_mean)
            clv_deciles = None if row.clv_deciles is None or row.clv_deciles[0] is None else list(row.clv_deciles)
        else:
            by_tier[row.tier] = row.customers
    surveys = (await session.execute(text(_SURVEYS_SQL), {"start_at": midnight(start), "end_at": midnight(end)})).one()
    return PeriodCounts(
        active_start=customers.active_start,
        active_end=customers.active_end,
        new=customers.new,
        retained=customers.retained,
        revenue=Decimal(customers.revenue),
        revenue_new=Decimal(customers.revenue_new),
        repurchases=gaps.repurchases,
        repurchase_gap_days_sum=int(gaps.gap_sum),
        repurchase_gap_days_median=None if gaps.gap_median is None else float(gaps.gap_median),
        active_by_tier=by_tier,
        clv_mean=clv_mean,
        clv_deciles=clv_deciles,
        nps_responses=surveys.nps_responses,
        nps_promoters=surveys.nps_promoters,
        nps_detractors=surveys.nps_detractors,
        csat_responses=surveys.csat_responses,
        csat_satisfied=surveys.csat_satisfied,
    )


async def write_period(session: AsyncSession, grain: Grain, start: date, counts: PeriodCounts, now: datetime) -> None:
    """Stores a period's figures and recomputes its column of the cohort table (after `compute_period`, in the
    same transaction)."""
    await session.execute(
        text(
            "INSERT INTO insights.period_figures (grain, period_start, counts, computed_at, anomalies_checked) "
            "VALUES (:g, :s, CAST(:counts AS jsonb), :now, false) ON CONFLICT (grain, period_start) DO UPDATE "
            "SET counts = excluded.counts, computed_at = excluded.computed_at, anomalies_checked = false"
        ),
        {"g": grain.value, "s": start, "counts": counts_json(counts), "now": now},
    )
    bounds = {"grain": grain.value, "start": start}
    await session.execute(
        text("DELETE FROM insights.cohort_cells WHERE grain = :grain AND period_start = :start"), bounds
    )
    await session.execute(text(_COHORT_COLUMN_SQL), bounds)


def counts_json(counts: PeriodCounts) -> str:
    values: dict[str, Any] = asdict(counts)
    values["revenue"] = str(counts.revenue)
    values["revenue_new"] = str(counts.revenue_new)
    return orjson.dumps(values).decode()


def counts_of(document: dict[str, Any]) -> PeriodCounts:
    return PeriodCounts(
        **{**document, "revenue": Decimal(document["revenue"]), "revenue_new": Decimal(document["revenue_new"])}
    )


async def stored_figures(
    session: AsyncSession, grain: Grain, first: date, last: date
) -> dict[date, tuple[PeriodCounts, bool]]:
    """Stored figures of periods starting in [first, last], with whether they are marked dirty."""
    rows = await session.execute(
        text(
            "SELECT f.period_start, f.counts, d.mark IS NOT NULL AS dirty FROM insights.period_figures f "
            "LEFT JOIN insights.dirty_periods d ON d.grain = f.grain AND d.period_start = f.period_start "
            "WHERE f.grain = :g AND f.period_start BETWEEN :first AND :last"
        ),
        {"g": grain.value, "first": first, "last": last},
    )
    return {row.period_start: (counts_of(row.counts), row.dirty) for row in rows}


async def cohort_cells(
    session: AsyncSession, grain: Grain, first: date, last: date
) -> list[tuple[date, date, int, Decimal]]:
    """(cohort start, period start, active, revenue) of cohorts starting in [first, last]."""
    rows = await session.execute(
        text(
            "SELECT cohort_start, period_start, active, revenue FROM insights.cohort_cells "
            "WHERE grain = :g AND cohort_start BETWEEN :first AND :last ORDER BY cohort_start, period_start"
        ),
        {"g": grain.value, "first": first, "last": last},
    )
    return [(row.cohort_start, row.period_start, row.active, Decimal(row.revenue)) for row in rows]


# -- anomalies ----------------------------------------------------------------------------------------------------


async def unchecked_closed_periods(session: AsyncSession, grain: Grain, ended_by: date) -> list[date]:
    """Computed, clean periods ending on or before `ended_by` not yet looked at for anomalies, oldest first."""
    rows = await session.execute(
        text(
            "SELECT f.period_start FROM insights.period_figures f LEFT JOIN insights.dirty_periods d "
            "ON d.grain = f.grain AND d.period_start = f.period_start "
            "WHERE f.grain = :g AND NOT f.anomalies_checked AND f.period_start < :before AND d.mark IS NULL "
            "ORDER BY f.period_start"
        ),
        {"g": grain.value, "before": ended_by},
    )
    return [row.period_start for row in rows if period_end(row.period_start, grain) <= ended_by]


async def record_anomaly(
    session: AsyncSession,
    grain: Grain,
    start: date,
    kpi: str,
    values: tuple[float, float, float],
    event_id: str,
    now: datetime,
) -> bool:
    """True when this KPI and period had no anomaly recorded yet (the caller then emits the event)."""
    value, baseline, deviation = values
    inserted = await session.scalar(
        text(
            "INSERT INTO insights.kpi_anomalies (grain, period_start, kpi, value, baseline, deviation, event_id, "
            "detected_at) VALUES (:g, :s, :kpi, :value, :baseline, :deviation, :event_id, :now) "
            "ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {
            "g": grain.value,
            "s": start,
            "kpi": kpi,
            "value": value,
            "baseline": baseline,
            "deviation": deviation,
            "event_id": event_id,
            "now": now,
        },
    )
    return inserted is not None


async def mark_checked(session: AsyncSession, grain: Grain, start: date) -> None:
    await session.execute(
        text("UPDATE insights.period_figures SET anomalies_checked = true WHERE grain = :g AND period_start = :s"),
        {"g": grain.value, "s": start},
    )


async def anomalies_between(session: AsyncSession, grain: Grain, first: date, last: date) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT period_start, kpi, value, baseline, deviation, event_id FROM insights.kpi_anomalies "
            "WHERE grain = :g AND period_start BETWEEN :first AND :last ORDER BY period_start, kpi"
        ),
        {"g": grain.value, "first": first, "last": last},
    )
    return [dict(row._mapping) for row in rows]


async def dirty_count(session: AsyncSession) -> int:
    count: int = await session.scalar(text("SELECT count(*) FROM insights.dirty_periods")) or 0
    return count


# -- profile traits and the churned-customers report --------------------------------------------------------------


async def write_traits(session: AsyncSession, traits: Sequence[Traits]) -> None:
    """Keeps each customer's traits of the highest profile version seen (a late announcement is older)."""
    newest: dict[str, Traits] = {}
    for t in traits:
        if t.customer_id not in newest or t.version > newest[t.customer_id].version:
            newest[t.customer_id] = t
    columns = [
        "version",
        "favourite_category",
        "region",
        "channel",
        "open_tickets",
        "last_nps",
        "last_login_at",
        "last_purchase_at",
    ]
    await upsert(
        session,
        customer_traits,
        [{"customer_id": t.customer_id} | {c: getattr(t, c) for c in columns} for t in newest.values()],
        key=["customer_id"],
        update=columns,
        update_where="t.version < EXCLUDED.version",
    )


# The customers the report compares: those whose stage became churned within the period (churned at its end, not at
# its start) and the active base (a base stage at its end), with tier at the end; CLV and churn reasons of the last
# score before the end are looked up for the churned only (the base needs neither).
_REPORT_CUSTOMERS_SELECT = """
SELECT e.customer_id, e.tier, e.churned, l.clv, l.reasons FROM (
    SELECT r.customer_id, r.tier, r.stage = 'churned' AS churned FROM insights.stage_runs r
    WHERE r.since < :end_at AND (r.until IS NULL OR r.until >= :end_at) AND (
        r.stage = ANY(CAST(:base AS text[]))
        OR (r.stage = 'churned' AND r.since >= :start_at AND NOT EXISTS (
            SELECT 1 FROM insights.stage_runs b WHERE b.customer_id = r.customer_id AND b.stage = 'churned'
            AND b.since < :start_at AND (b.until IS NULL OR b.until >= :start_at)
        ))
    )
) e LEFT JOIN LATERAL (
    SELECT s.clv, s.reasons FROM insights.scores s
    WHERE e.churned AND s.customer_id = e.customer_id AND s.scored_at < :end_at AND s.stage IS NOT NULL
    ORDER BY s.scored_at DESC, s.event_id DESC LIMIT 1
) l ON true
"""
_REPORT_CUSTOMERS_SQL = f"CREATE TEMPORARY TABLE report_customers ON COMMIT DROP AS {_REPORT_CUSTOMERS_SELECT}"
_TOTALS = (
    "count(*) FILTER (WHERE churned) AS churned, count(*) FILTER (WHERE NOT churned) AS base, "
    "coalesce(sum(clv) FILTER (WHERE churned), 0) AS clv_lost"
)

# One value per customer and trait (the buckets of the report); traits are the customer's latest profile. One pass
# over the customers counts every trait (a grouping set per trait).
_TRAIT_COUNTS_SQL = f"""
WITH coupons AS (
    SELECT DISTINCT customer_id FROM insights.purchases WHERE coupon_code IS NOT NULL AND purchased_at < :end_at
), valued AS (
    SELECT r.churned,
        coalesce(c.favourite_category, 'unknown') AS favourite_category,
        coalesce(c.region, 'unknown') AS region,
        coalesce(c.channel, 'no logins') AS channel,
        coalesce(r.tier, 'unscored') AS tier,
        CASE WHEN coalesce(c.open_tickets, 0) > 0 THEN 'open' ELSE 'none open' END AS complaints,
        CASE WHEN c.last_nps IS NULL THEN 'no answer' WHEN c.last_nps >= 9 THEN 'promoter'
             WHEN c.last_nps >= 7 THEN 'passive' ELSE 'detractor' END AS nps_band,
        CASE WHEN u.customer_id IS NOT NULL THEN 'used' ELSE 'never' END AS coupon_use,
        CASE WHEN c.last_login_at IS NULL THEN 'never'
             WHEN c.last_login_at > :end_at - interval '8 days' THEN '0-7'
             WHEN c.last_login_at > :end_at - interval '31 days' THEN '8-30'
             WHEN c.last_login_at > :end_at - interval '91 days' THEN '31-90' ELSE '91+' END AS days_since_last_login
    FROM report_customers r LEFT JOIN insights.customer_traits c USING (customer_id)
    LEFT JOIN coupons u ON u.customer_id = r.customer_id
)
SELECT churned, {", ".join(f"GROUPING({t}) AS g_{t}" for t in TRAITS)}, {", ".join(TRAITS)}, count(*) AS customers
FROM valued GROUP BY GROUPING SETS ({", ".join(f"(churned, {t})" for t in TRAITS)})
"""

_TOP_CHURNED_SQL = """
SELECT r.customer_id, r.tier, r.clv, r.reasons, c.region, c.favourite_category, c.channel, c.open_tickets,
       c.last_nps, c.last_login_at,
       (SELECT min(scored_at) FROM insights.scores s WHERE s.customer_id = r.customer_id AND s.stage = 'churned'
          AND s.scored_at >= :start_at AND s.scored_at < :end_at) AS churned_at,
       (SELECT max(day) FROM insights.customer_days d WHERE d.customer_id = r.customer_id AND d.day < :end)
          AS last_purchase_day,
       (SELECT max(answered_at) FROM insights.survey_scores a WHERE a.customer_id = r.customer_id
          AND a.answered_at < :end_at) AS last_answer_at
FROM report_customers r LEFT JOIN insights.customer_traits c USING (customer_id)
WHERE r.churned ORDER BY r.clv DESC NULLS LAST, r.customer_id LIMIT :top
"""


@dataclass(frozen=True, slots=True)
class ChurnCounts:
    churned: int
    base: int
    clv_lost: float
    churned_traits: dict[tuple[str, str], int]
    base_traits: dict[tuple[str, str], int]
    top: list[dict[str, Any]]


async def churn_counts(session: AsyncSession, grain: Grain, start: date, *, top: int) -> ChurnCounts:
    """Who became churned in the period, the traits of them and of the active base, and the `top` by CLV."""
    end = period_end(start, grain)
    bounds = {"start_at": midnight(start), "end_at": midnight(end), "end": end}
    # The trait counts group the whole base once per trait: in memory, not in sorted runs spilled to disk.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    await session.execute(text("DROP TABLE IF EXISTS report_customers"))
    await session.execute(text(_REPORT_CUSTOMERS_SQL), {**bounds, "base": list(BASE_STAGES)})
    await session.execute(text("ANALYZE report_customers"))
    totals = (await session.execute(text(f"SELECT {_TOTALS} FROM report_customers"))).one()
    churned: dict[tuple[str, str], int] = {}
    base: dict[tuple[str, str], int] = {}
    for row in await session.execute(text(_TRAIT_COUNTS_SQL), bounds):
        # The grouping set of the row is the one trait whose GROUPING() is 0 (grouped by it).
        trait = next(t for t in TRAITS if getattr(row, f"g_{t}") == 0)
        (churned if row.churned else base)[(trait, getattr(row, trait))] = row.customers
    rows = await session.execute(text(_TOP_CHURNED_SQL), {**bounds, "top": top})
    return ChurnCounts(
        totals.churned, totals.base, float(totals.clv_lost), churned, base, [dict(r._mapping) for r in rows]
    )


def _counts_document(counts: ChurnCounts) -> str:
    return orjson.dumps(
        {
            "churned": counts.churned,
            "base": counts.base,
            "clv_lost": counts.clv_lost,
            "churned_traits": [[t, v, n] for (t, v), n in sorted(counts.churned_traits.items())],
            "base_traits": [[t, v, n] for (t, v), n in sorted(counts.base_traits.items())],
            "top": counts.top,
        },
        default=str,
    ).decode()


async def cached_churn_counts(
    session: AsyncSession, grain: Grain, start: date, *, max_age_s: float
) -> ChurnCounts | None:
    """The period's counts as last computed, unless something changed them since or they are older than
    `max_age_s`."""
    document = await session.scalar(
        text(
            "SELECT counts FROM insights.churn_report_counts WHERE grain = :g AND period_start = :s "
            "AND counts IS NOT NULL AND computed_at > now() - make_interval(secs => :age)"
        ),
        {"g": grain.value, "s": start, "age": max_age_s},
    )
    if document is None:
        return None
    return ChurnCounts(
        document["churned"],
        document["base"],
        document["clv_lost"],
        {(t, v): n for t, v, n in document["churned_traits"]},
        {(t, v): n for t, v, n in document["base_traits"]},
        [_top_row(row) for row in document["top"]],
    )


_TOP_TIMES = ("churned_at", "last_login_at", "last_answer_at")


def _top_row(row: dict[str, Any]) -> dict[str, Any]:
    """A listed customer as `churn_counts` gives it: times and days back from their ISO strings."""
    parsed = {key: datetime.fromisoformat(row[key]) if row.get(key) else None for key in _TOP_TIMES}
    day = row.get("last_purchase_day")
    return {**row, **parsed, "last_purchase_day": date.fromisoformat(day) if day else None}


async def claim_churn_counts(session: AsyncSession, grain: Grain, start: date) -> str:
    """Claims the period's row before counting (its own transaction). The exclusive lock waits for every change in
    flight to commit, and a change committing later sees the claim and deletes it: counts kept under a claim that
    survived are never older than the data."""
    token = uuid.uuid4().hex
    await session.execute(text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": _LOCK_CLASS, "k": _REPORT_COUNTS_LOCK})
    await session.execute(
        text(
            "INSERT INTO insights.churn_report_counts (grain, period_start, period_end_at, token) "
            "VALUES (:g, :s, :end_at, :token) ON CONFLICT (grain, period_start) "
            "DO UPDATE SET token = excluded.token, counts = NULL, computed_at = NULL"
        ),
        {"g": grain.value, "s": start, "end_at": midnight(period_end(start, grain)), "token": token},
    )
    return token


async def keep_churn_counts(session: AsyncSession, grain: Grain, start: date, token: str, counts: ChurnCounts) -> None:
    await session.execute(
        text(
            "UPDATE insights.churn_report_counts SET counts = CAST(:counts AS jsonb), computed_at = now() "
            "WHERE grain = :g AND period_start = :s AND token = :token"
        ),
        {"g": grain.value, "s": start, "token": token, "counts": _counts_document(counts)},
    )


async def forget_churn_counts(session: AsyncSession, changed_at: datetime | None) -> None:
    """Drops the counted reports a score at `changed_at` can change (those of periods ending after it); None: all
    of them (an erasure or a join moves customers in every period). Holds the lock shared until commit, so a claim
    is either seen here or made after this change is visible."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock_shared(:c, :k)"), {"c": _LOCK_CLASS, "k": _REPORT_COUNTS_LOCK}
    )
    if changed_at is None:
        await session.execute(text("DELETE FROM insights.churn_report_counts"))
    else:
        await session.execute(
            text("DELETE FROM insights.churn_report_counts WHERE period_end_at > :at"), {"at": changed_at}
        )


async def churn_totals(session: AsyncSession, grain: Grain, start: date) -> tuple[int, int, float]:
    """(churned, active base, CLV lost) of the period: what its announcement carries, without the traits."""
    end = period_end(start, grain)
    row = (
        await session.execute(
            text(f"SELECT {_TOTALS} FROM ({_REPORT_CUSTOMERS_SELECT}) r"),
            {"start_at": midnight(start), "end_at": midnight(end), "base": list(BASE_STAGES)},
        )
    ).one()
    return row.churned, row.base, float(row.clv_lost)


async def first_score_at(session: AsyncSession) -> datetime | None:
    result: datetime | None = await session.scalar(text("SELECT min(scored_at) FROM insights.scores"))
    return result


async def announced_reports(session: AsyncSession, grain: Grain) -> set[date]:
    rows = await session.execute(
        text("SELECT period_start FROM insights.churn_reports WHERE grain = :g"), {"g": grain.value}
    )
    return {row.period_start for row in rows}


async def record_report(
    session: AsyncSession, grain: Grain, start: date, churned: int, event_id: str, now: datetime
) -> bool:
    """True when the period's report had not been announced (the caller then emits the event)."""
    inserted = await session.scalar(
        text(
            "INSERT INTO insights.churn_reports (grain, period_start, churned, event_id, announced_at) "
            "VALUES (:g, :s, :churned, :event_id, :now) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {"g": grain.value, "s": start, "churned": churned, "event_id": event_id, "now": now},
    )
    return inserted is not None


# -- behavioural clusters -----------------------------------------------------------------------------------------

# Per customer with purchases: days since the last purchase day, purchase days, spend, and CLV of the last score.
_CLUSTER_FEATURES_SQL = """
WITH clv AS (
    SELECT DISTINCT ON (customer_id) customer_id, clv FROM insights.scores WHERE scored_at <= :now
    ORDER BY customer_id, scored_at DESC, event_id DESC
)
SELECT d.customer_id, :today - max(d.day) AS recency_days, count(*) AS frequency, sum(d.amount) AS monetary,
       coalesce(max(clv.clv), 0) AS clv
FROM insights.customer_days d LEFT JOIN clv USING (customer_id)
WHERE d.day <= :today GROUP BY d.customer_id ORDER BY d.customer_id
"""


async def cluster_features(session: AsyncSession, now: datetime) -> tuple[list[str], list[tuple[float, ...]]]:
    rows = await session.execute(text(_CLUSTER_FEATURES_SQL), {"now": now, "today": now.date()})
    ids: list[str] = []
    features: list[tuple[float, ...]] = []
    for row in rows:
        ids.append(row.customer_id)
        features.append((float(row.recency_days), float(row.frequency), float(row.monetary), float(row.clv)))
    return ids, features


async def lock_clusters(session: AsyncSession) -> None:
    """Two refits (two replicas) replace the clusters one after the other, each diffing against the last."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext('clusters'))"), {"c": _LOCK_CLASS})


async def cluster_members(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(text("SELECT customer_id, segment FROM insights.cluster_members"))
    return {row.customer_id: row.segment for row in rows}


_MEMBERS_CHUNK = 50_000


async def replace_clusters(
    session: AsyncSession, described: Sequence[Mapping[str, Any]], members: Mapping[str, str]
) -> None:
    """The new fit replaces the old one whole: its clusters and every customer's membership."""
    await session.execute(text("DELETE FROM insights.clusters"))
    await session.execute(text("TRUNCATE insights.cluster_members"))
    for cluster in described:
        await session.execute(
            text(
                "INSERT INTO insights.clusters (segment, customers, centre, z, description, fit_id, k, silhouette, "
                "fitted_at) VALUES (:segment, :customers, CAST(:centre AS jsonb), CAST(:z AS jsonb), :description, "
                ":fit_id, :k, :silhouette, :fitted_at)"
            ),
            {**cluster, "centre": orjson.dumps(cluster["centre"]).decode(), "z": orjson.dumps(cluster["z"]).decode()},
        )
    ordered = sorted(members.items())
    for low in range(0, len(ordered), _MEMBERS_CHUNK):
        chunk = ordered[low : low + _MEMBERS_CHUNK]
        await upsert(session, tables.cluster_members, [{"customer_id": c, "segment": g} for c, g in chunk])


async def stored_clusters(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT segment, customers, centre, z, description, fit_id, k, silhouette, fitted_at "
            "FROM insights.clusters ORDER BY segment"
        )
    )
    return [dict(row._mapping) for row in rows]
