"""Benchmark the profile consumer: events/s applied to PostgreSQL from a pre-filled topic.

    python -m bench.bench_profile [--events 100000] [--customers 20000] [--batch 10000] [--partitions 4] [--replicas 2]

Embedded PostgreSQL and Tansu. The customer-events topic is pre-filled with synthetic purchases, logins, page
views and a few customer upserts, about five per customer in random order (how often a customer repeats within
a batch decides how much the per-customer coalescing saves). Then
(a) a raw aiokafka consumer reads the whole topic with no processing: the read limit, and
(b) the real profile app (Runtime, consumer loop, inbox, outbox) runs in-process until its consumer lag is zero.
Figures: events/s from the moment the group has its partitions to the last applied event (the group join itself
excluded, the first batch included), wall time from start to lag
zero (group join included), and b/a.

`--replicas N` scales out the way production does: N consumer processes in one consumer group (the first in this
process, the others as child processes), migrations run once before any of them starts. Use as many partitions as
replicas or a multiple of it so the work splits evenly. The defaults are the smallest production shape (two
replicas, as deploy/k8s runs at least); `--replicas 1` measures one process alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.workdir import discard_unless_failed, scratch_directory
from libs.common.envelope import CloudEvent
from libs.common.kafka import ensure_topics
from libs.common.migrations import migrate
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS, PROFILE_CHANGES, qualified
from retain_cli.embedded import free_port, start_broker, start_postgres
from services.profile.bootstrap import DEFINITION, create_app
from services.profile.settings import ProfileSettings

PREFIX = "bench-"
CATEGORIES = ("books", "toys", "garden", "music", "sports", "food", "tools")


def synthetic_events(n: int, customers: int, seed: int) -> list[CloudEvent]:
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for i in range(n):
        customer = f"c-{rng.randrange(customers)}"
        at = start + timedelta(seconds=rng.randrange(120 * 86_400))
        roll = rng.random()
        category = rng.choice(CATEGORIES)
        sku = f"s-{rng.randrange(500)}"
        if roll < 0.2:
            amount = rng.randrange(5, 300)
            data: dict[str, object] = {
                "order_id": f"o-{i}",
                "amount": amount,
                "currency": "USD",
                "items": [{"sku": sku, "category": category, "quantity": 1, "price": amount}],
            }
            kind = "purchase"
        elif roll < 0.5:
            kind, data = "login", {"channel": rng.choice(("web", "app"))}
        elif roll < 0.98:
            kind, data = "page_view", {"sku": sku, "category": category}
        else:
            kind, data = (
                "customer.upserted",
                {"email": f"{customer}@example.com", "region": rng.choice(("east", "west"))},
            )
        events.append(CloudEvent(id=f"b-{i}", source="bench", type=kind, subject=customer, time=at, data=data))
    return events


async def prefill(bootstrap: str, topic: str, events: list[CloudEvent]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=65536, enable_idempotence=False
    )
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for event in events:
            key, value, headers = event.to_kafka()
            futures.append(await producer.send(topic, value=value, key=key, headers=headers))
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def raw_read(bootstrap: str, topic: str, n: int) -> float:
    """Baseline: the same topic read by a bare consumer (own group), no decoding, no database."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"{PREFIX}raw-reader", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        seen = 0
        started: float | None = None
        while seen < n:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batches.values():
                if started is None:
                    started = time.perf_counter()  # the group join is not reading
                seen += len(records)
        assert started is not None
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def lag(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        total = 0
        for tp in tps:
            committed = await consumer.committed(tp)
            total += ends[tp] - (committed or 0)
        return total
    finally:
        await consumer.stop()


async def topic_size(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


async def main_async(args: argparse.Namespace) -> None:
    base = scratch_directory("bench-profile-")
    postgres = start_postgres(base / "postgres")
    broker = start_broker(free_port(), base / "broker.log")
    replicas: list[subprocess.Popen[bytes]] = []
    try:
        postgres.create_database("bench")
        config: dict[str, object] = {
            "service": "profile",
            "database_url": postgres.database_url("bench"),
            "kafka_bootstrap": broker.bootstrap,
            "topic_prefix": PREFIX,
            "topic_partitions": args.partitions,
            "consumer_batch_size": args.batch,
            "log_level": "WARNING",
            "clock_mode": "replay",
        }
        settings = Settings(**config)  # type: ignore[arg-type]
        await ensure_topics(settings)
        topic = qualified(PREFIX, CUSTOMER_EVENTS)
        events = synthetic_events(args.events, args.customers, args.seed)
        fill_s = await prefill(broker.bootstrap, topic, events)
        print(f"pre-filled {args.events:,} events over {args.customers:,} customers in {fill_s:.1f} s")

        raw = await raw_read(broker.bootstrap, topic, args.events)
        print(f"(a) raw aiokafka consumer read, no processing: {raw:10,.0f} events/s")

        engine = create_async_engine(settings.database_url)
        started = time.perf_counter()
        if args.replicas > 1:
            # Several replicas must not race to migrate: once here, then every replica starts without it.
            await migrate(DEFINITION.migrations_dir, settings.database_url, DEFINITION.name)
            config["migrate_on_start"] = False
            settings = Settings(**config)  # type: ignore[arg-type]
            replicas.extend(spawn_replicas(config, args.replicas - 1))
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            consumer = app.state.runtime.consumers[0]
            # The rate counts from the group join, not from the first commit: a large first batch is work too.
            await consumer.assigned.wait()
            first = time.perf_counter()
            while True:
                await asyncio.sleep(0.25)
                try:
                    async with engine.connect() as connection:
                        done = await connection.scalar(text("SELECT count(*) FROM profile.inbox"))
                except Exception as exc:
                    if time.perf_counter() - started > 60:
                        raise RuntimeError("profile schema never appeared") from exc
                    continue  # migrations still running
                if done is not None and done >= args.events:
                    break
                if args.verbose:
                    print(f"    {time.perf_counter() - started:6.1f} s: {done:,} applied")
            applied = time.perf_counter()
            group = qualified(PREFIX, "profile.customer-events")
            while True:
                remaining = await lag(broker.bootstrap, topic, group, args.partitions)
                # Tansu's end offsets can trail a just-committed offset, which reads as negative lag.
                if remaining <= 0:
                    break
                if time.perf_counter() - applied > 30:
                    raise RuntimeError(f"consumer lag stuck at {remaining}")
                await asyncio.sleep(0.1)
            lag_zero = time.perf_counter()
            cache = consumer.subscription.handler.cache
        async with engine.connect() as connection:
            profiles = await connection.scalar(text("SELECT count(*) FROM profile.customers"))
            timeline = await connection.scalar(text("SELECT count(*) FROM profile.timeline"))
            unpublished = await connection.scalar(text("SELECT count(*) FROM profile.outbox"))
        published = await topic_size(broker.bootstrap, qualified(PREFIX, PROFILE_CHANGES), args.partitions)
        await engine.dispose()
        rate = args.events / (applied - first)
        print(
            f"(b) profile consumer, applied to PostgreSQL:   {rate:10,.0f} events/s  "
            f"(batch {args.batch}, {args.partitions} partitions, {args.replicas} consumer "
            f"process{'es' if args.replicas > 1 else ''} in one group; target >= 5,000)"
        )
        print(f"    b/a = {rate / raw:.3f}")
        print(
            f"    lag zero {lag_zero - started:.1f} s after start (group join and migrations included); "
            f"{applied - first:.1f} s from the group join to the last applied event"
        )
        print(
            f"    {profiles:,} profiles, {timeline:,} timeline rows, {published + unpublished:,} profile updates "
            f"({unpublished:,} not yet relayed); "
            f"state cache hits {cache.hits:,} misses {cache.misses:,}"
            + (" (this process's replica only)" if args.replicas > 1 else "")
        )
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        for replica in replicas:
            try:
                replica.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.kill()
        broker.stop()
        postgres.stop()
        discard_unless_failed(base)


def spawn_replicas(config: dict[str, object], count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, "-m", "bench.bench_profile", "--worker", json.dumps(config)])
        for _ in range(count)
    ]


async def replica_async(config: dict[str, object]) -> None:
    """One more consumer process of the same group, until the parent sends SIGTERM."""
    app = create_app(Settings(**config))  # type: ignore[arg-type]
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    async with app.router.lifespan_context(app):
        await stopping.wait()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        uvloop.run(replica_async(json.loads(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument(
        "--batch",
        type=int,
        default=ProfileSettings.model_fields["consumer_batch_size"].default,
        help="consumer_batch_size (max records per poll); default: profile's own",
    )
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--replicas", type=int, default=2, help="consumer processes in the one consumer group (scale-out)"
    )
    parser.add_argument("--verbose", action="store_true", help="print progress while the consumer runs")
    # The event loop uvicorn gives the service in production.
    uvloop.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
