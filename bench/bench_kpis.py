"""Benchmark insights' KPIs and cohorts at scale.

    python -m bench.bench_kpis [--customers 1000000] [--purchases 10000000] [--months 24] [--requests 200]

1. Load: the purchases (plus one score per customer and survey answers) go into insights' tables in bulk by SQL,
   standing in for what the consumers would have stored; customer ids are skewed so a few buy often.
2. From scratch: purchase days and first purchases derived for every customer, then every week, month and
   quarter from the first purchase to the clock computed (KPIs and cohort columns), as after a rebuild.
3. One more day: a day's worth of purchases (purchases / days) delivered through the consumer handler in batches of
   the consumer batch size, then the touched periods recomputed.
4. Churn and clusters: the churned-customers report of the last closed week (counted, then read from the kept
   counts), the announcement of every closed week's report, and a refit of the behavioural clusters (k by
   silhouette) with its segments published.
5. API: GET /v1/kpis and GET /v1/cohorts for the last 24 months, and GET /v1/reports/churned for the last closed
   week (kept counts), over HTTP in-process (ASGI), p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.workdir import discard_unless_failed, scratch_directory
from libs.common.consumer import HandlerContext
from libs.common.db import create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.migrations import migrate
from libs.common.outbox import Outbox
from libs.common.settings import Settings
from retain_cli.embedded import free_port, start_broker, start_postgres
from services.insights.adapters import store
from services.insights.adapters.tables import SCHEMA, messaging
from services.insights.bootstrap import create_app
from services.insights.domain.facts import periods_from
from services.insights.domain.periods import GRAINS, Grain, period_start
from services.insights.handlers import consume
from services.insights.handlers.churn import ChurnReports
from services.insights.handlers.clusters import Clusters
from services.insights.handlers.figures import Figures
from services.insights.settings import InsightsSettings, insights_settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "insights" / "migrations"
FIRST_DAY = date(2023, 1, 1)
KEY = "bench-key"

# Customer n = 1 + floor(N * u^1.6): low ids buy more often, as a real base's loyal few do.
_LOAD_PURCHASES = """
INSERT INTO insights.purchases (order_id, customer_id, purchased_at, day, amount, event_id)
SELECT 'o' || i, 'c' || CAST(1 + floor(CAST(:customers AS float8) * power(random(), 1.6)) AS bigint),
       at, CAST(at AT TIME ZONE 'UTC' AS date), round(CAST(5 + random() * 95 AS numeric), 2), 'e' || i
FROM (
    SELECT i, CAST(:first AS timestamptz) + make_interval(secs => floor(random() * CAST(:seconds AS float8))) AS at
    FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS i
) AS generated
"""


def report(name: str, seconds: float, detail: str = "") -> None:
    print(f"{name:<44} {seconds:9.2f} s  {detail}")


async def load(settings: InsightsSettings, customers: int, purchases: int, days: int) -> None:
    engine = create_engine(settings)
    started = time.perf_counter()
    async with engine.begin() as connection:
        # Indexes are built once after the load, as a bulk load does.
        await connection.execute(text("DROP INDEX insights.purchases_customer_day"))
        await connection.execute(text("ALTER TABLE insights.purchases DROP CONSTRAINT purchases_pkey"))
    chunk = 1_000_000
    for low in range(1, purchases + 1, chunk):
        async with engine.begin() as connection:
            await connection.execute(
                text(_LOAD_PURCHASES),
                {
                    "customers": customers,
                    "first": datetime.combine(FIRST_DAY, datetime.min.time(), UTC),
                    "seconds": days * 86400,
                    "low": low,
                    "high": min(purchases, low + chunk - 1),
                },
            )
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE insights.purchases ADD PRIMARY KEY (order_id)"))
        await connection.execute(text("CREATE INDEX purchases_customer_day ON insights.purchases (customer_id, day)"))
        # One score per customer some time after their first purchase, and survey answers.
        await connection.execute(
            text(
                "INSERT INTO insights.scores (customer_id, scored_at, event_id, tier, clv) "
                "SELECT customer_id, min(purchased_at) + interval '1 day', 's' || customer_id, "
                "(ARRAY['low', 'medium', 'high', 'top'])[1 + (abs(hashtext(customer_id)) % 4)], "
                "round(CAST(sum(amount) * 1.5 AS numeric), 2) FROM insights.purchases GROUP BY customer_id"
            )
        )
        # A churned score 120 days after the last purchase (when that is before the clock), and profile traits.
        await connection.execute(
            text(
                "INSERT INTO insights.scores (customer_id, scored_at, event_id, tier, clv, stage, reasons) "
                "SELECT customer_id, max(purchased_at) + interval '120 days', 'z' || customer_id, 'low', "
                "round(CAST(sum(amount) AS numeric), 2), 'churned', "
                'CAST(\'[{"code": "recency", "message": "no purchase", "contribution": 0.8}]\' AS jsonb) '
                "FROM insights.purchases GROUP BY customer_id "
                "HAVING max(purchased_at) + interval '120 days' < (SELECT max(purchased_at) FROM insights.purchases)"
            )
        )
        await connection.execute(text("UPDATE insights.scores SET stage = 'active' WHERE stage IS NULL"))
        await connection.execute(
            text(
                "INSERT INTO insights.customer_traits (customer_id, version, favourite_category, region, channel, "
                "open_tickets, last_nps, last_login_at) "
                "SELECT customer_id, 1, (ARRAY['books', 'music', 'video'])[1 + abs(hashtext(customer_id)) % 3], "
                "(ARRAY['north', 'south', 'east', 'west'])[1 + abs(hashtext(customer_id || 'r')) % 4], "
                "(ARRAY['app', 'web'])[1 + abs(hashtext(customer_id || 'c')) % 2], abs(hashtext(customer_id)) % 2, "
                "abs(hashtext(customer_id || 'n')) % 11, max(purchased_at) "
                "FROM insights.purchases GROUP BY customer_id"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO insights.survey_scores (event_id, customer_id, answered_at, kind, score) "
                "SELECT 'f' || i, 'c' || (1 + i % CAST(:customers AS bigint)), "
                "CAST(:first AS timestamptz) + make_interval(secs => floor(random() * CAST(:seconds AS float8))), "
                "CASE WHEN i % 2 = 0 THEN 'nps' ELSE 'csat' END, "
                "CASE WHEN i % 2 = 0 THEN floor(random() * 11) ELSE 1 + floor(random() * 5) END "
                "FROM generate_series(1, CAST(:answers AS bigint)) AS i"
            ),
            {
                "customers": customers,
                "first": datetime.combine(FIRST_DAY, datetime.min.time(), UTC),
                "seconds": days * 86400,
                "answers": max(1, purchases // 100),
            },
        )
        newest = await connection.scalar(text("SELECT max(purchased_at) FROM insights.purchases"))
        await connection.execute(
            text("INSERT INTO insights.clock (id, newest_event_at) VALUES (1, :at)"), {"at": newest}
        )
        for table in ("purchases", "scores", "survey_scores", "customer_traits"):
            await connection.execute(text(f"ANALYZE insights.{table}"))
    await engine.dispose()
    report("load purchases, scores, answers (bulk SQL)", time.perf_counter() - started, f"{purchases:,} purchases")


async def from_scratch(figures: Figures, engine: AsyncEngine) -> None:
    started = time.perf_counter()
    async with figures.sessions() as session, session.begin():
        span = await store.rederive_everything(session)
        assert span is not None
        first, last = span
        rows = await session.scalar(text("SELECT count(*) FROM insights.customer_days"))
    # What autovacuum does after a bulk insert: the visibility map lets period reads scan the covering index alone.
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM ANALYZE insights.customer_days"))
    derived = time.perf_counter() - started
    report("derive purchase days and first purchases", derived, f"{rows:,} customer-days, vacuumed")
    began = time.perf_counter()
    async with figures.sessions() as session, session.begin():
        await store.rebuild_stage_runs(session, None)
        runs = await session.scalar(text("SELECT count(*) FROM insights.stage_runs"))
    report("derive stage runs from scores", time.perf_counter() - began, f"{runs:,} runs")
    async with figures.sessions() as session, session.begin():
        await store.mark_dirty(session, periods_from(first, last))
    for grain in ("month", "quarter", "week"):
        began = time.perf_counter()
        async with figures.sessions() as session:
            dirty = [
                (g, s)
                for g, s in await store.dirty_periods(session, up_to=_current(last), limit=10_000)
                if g.value == grain
            ]
        for g, s in dirty:
            await figures.recompute(g, s)
        seconds = time.perf_counter() - began
        report(f"compute every {grain} (KPIs + cohort column)", seconds, f"{len(dirty)} periods")
    report("from scratch, total", time.perf_counter() - started)


def _current(last: date) -> dict[Grain, date]:
    return {grain: period_start(last, grain) for grain in GRAINS}


async def one_more_day(figures: Figures, customers: int, per_day: int) -> None:
    async with figures.sessions() as session:
        newest = await store.newest_event_at(session)
    assert newest is not None
    day = datetime.combine(newest.date() + timedelta(days=1), datetime.min.time(), UTC)
    rng = random.Random(7)
    events = [
        CloudEvent(
            id=f"next-{n}",
            source="bench",
            type="purchase",
            subject=f"c{1 + int(customers * rng.random() ** 1.6)}",
            time=day + timedelta(seconds=rng.randrange(86400)),
            data={"order_id": f"next-{n}", "amount": str(Decimal(rng.randrange(500, 10000)) / 100), "currency": "USD"},
        )
        for n in range(per_day)
    ]
    events.sort(key=lambda e: e.time)
    batch = figures.settings.consumer_batch_size
    started = time.perf_counter()
    for low in range(0, len(events), batch):
        async with figures.sessions() as session, session.begin():
            await consume.on_purchases(HandlerContext(session, figures.outbox), events[low : low + batch])
    consumed = time.perf_counter() - started
    report("one more day: consume", consumed, f"{per_day:,} purchases, {per_day / consumed:,.0f}/s, batch {batch}")
    began = time.perf_counter()
    recomputed = await figures.refresh_dirty()
    report("one more day: recompute touched periods", time.perf_counter() - began, f"{recomputed} periods")
    report("one more day, total", time.perf_counter() - started)


async def churn_and_clusters(figures: Figures) -> None:
    reports = ChurnReports(figures.settings, figures.sessions, figures.outbox)
    began = time.perf_counter()
    one = await reports.report(figures.settings.insights_churn_report_grain, None)
    report("churned report of the last closed week", time.perf_counter() - began, f"{one['churned']:,} churned")
    began = time.perf_counter()
    await reports.report(figures.settings.insights_churn_report_grain, None)
    report("same report again (counts kept)", time.perf_counter() - began)
    began, announced = time.perf_counter(), 0
    while count := await reports.announce():
        announced += count
    report("churn reports of every closed week", time.perf_counter() - began, f"{announced} weeks announced")
    clusters = Clusters(figures.settings, figures.sessions, figures.outbox)
    began = time.perf_counter()
    fitted = await clusters.refit()
    report(
        "cluster refit (k by silhouette) + segments",
        time.perf_counter() - began,
        f"{fitted['customers']:,} customers, k={fitted['k']}, {fitted['changed']:,} published",
    )


async def api_latency(settings: InsightsSettings, requests: int, months: int) -> None:
    app = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would bury the figures
    async with app.router.lifespan_context(app):
        # Measured once the service is up and its first refresh (which finds nothing left to do) is over.
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 60)
        await asyncio.sleep(5)
        transport = ASGITransport(app=app)
        async with AsyncClient(
            transport=transport, base_url="http://bench", headers={"Authorization": f"Bearer {KEY}"}
        ) as client:
            figures = Figures(settings, app.state.runtime.sessions, app.state.runtime.outbox)
            now = await figures.now()
            first = (now.date().replace(day=1) - timedelta(days=31 * (months - 1))).replace(day=1)
            params = {"period": "month", "from": first.isoformat(), "to": now.date().isoformat()}
            for path, count in (("/v1/kpis", requests), ("/v1/cohorts", requests), ("/v1/reports/churned", 20)):
                timings = []
                if path == "/v1/reports/churned":
                    params = {"period": "week"}
                for _ in range(count):
                    began = time.perf_counter()
                    response = await client.get(path, params=params)
                    timings.append(time.perf_counter() - began)
                    assert response.status_code == 200, response.text
                timings.sort()
                p50 = statistics.median(timings) * 1000
                p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000
                print(f"GET {path:<20} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  ({count} requests)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    days = (date(FIRST_DAY.year + args.months // 12, FIRST_DAY.month + args.months % 12, 1) - FIRST_DAY).days
    base = scratch_directory("bench-kpis-")
    postgres = start_postgres(base / "postgres")
    broker = start_broker(free_port(), base / "broker.log")
    try:
        postgres.create_database("bench")
        settings = insights_settings(
            Settings(
                service=SCHEMA,
                database_url=postgres.database_url("bench"),
                kafka_bootstrap=broker.bootstrap,
                topic_prefix="bench-",
                clock_mode="replay",
                api_keys={KEY: {"source": "bench", "scopes": ["customers:read"]}},
            )
        ).model_copy(update={"insights_refresh_interval_s": 3600.0})
        print(
            f"insights: {args.customers:,} customers, {args.purchases:,} purchases over {args.months} months "
            f"({days} days) on embedded PostgreSQL with default settings"
        )
        await migrate(MIGRATIONS, settings.database_url, SCHEMA)
        await load(settings, args.customers, args.purchases, days)
        engine = create_engine(settings)
        try:
            figures = Figures(settings, session_factory(engine), Outbox(messaging, settings.topic_prefix))
            await from_scratch(figures, engine)
            await one_more_day(figures, args.customers, max(1, args.purchases // days))
            began = time.perf_counter()
            await figures.check_anomalies()
            await figures.update_gauges()
            report("anomaly check of every closed month, gauges", time.perf_counter() - began)
            await churn_and_clusters(figures)
        finally:
            await engine.dispose()
        await api_latency(settings, args.requests, args.months)
    finally:
        broker.stop()
        postgres.stop()
        discard_unless_failed(base)


if __name__ == "__main__":
    asyncio.run(main())
