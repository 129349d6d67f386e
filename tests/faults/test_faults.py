"""Faults mid-stream against the real platform: afterwards every service holds exactly the truth, with one coupon per
customer who crossed into the top tier, and no manual replay."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx

from retain_cli.embedded import free_port, start_broker, start_postgres
from tests.conftest import Isolation
from tests.faults.harness import (
    AUTH,
    after_opening,
    assert_exact,
    chunks,
    customers,
    open_accounts,
    post_until_accepted,
    supervised,
    urls_of,
)

CUSTOMERS = 24
CONSUMERS = ("profile", "scoring", "campaign", "feedback")


async def test_kill_9_of_each_consumer_service_mid_stream(isolated: Isolation, tmp_path: Path) -> None:
    people = customers(CUSTOMERS, "k9")
    parts = chunks(after_opening(people), len(CONSUMERS) + 1)
    async with supervised(isolated.env(), tmp_path) as platform, httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        ingest = platform.url("ingest")
        await open_accounts(client, ingest, urls_of(platform), people)
        for victim, part in zip(CONSUMERS, parts, strict=False):
            await post_until_accepted(client, ingest, part)
            child = platform.children[victim]
            assert child.process is not None
            os.kill(child.process.pid, signal.SIGKILL)  # mid-batch, whatever it was doing
        await post_until_accepted(client, ingest, parts[-1])
        await assert_exact(client, urls_of(platform), people)
        assert all(platform.children[name].restarts >= 1 for name in CONSUMERS)


async def test_postgres_restart_mid_stream(isolated: Isolation, tmp_path: Path) -> None:
    postgres = start_postgres(tmp_path / "postgres")
    try:
        postgres.create_database("retain")
        env = {**isolated.env(), "RETAIN_DATABASE_URL": postgres.database_url("retain")}
        people = customers(CUSTOMERS, "pg")
        first, second = chunks(after_opening(people), 2)
        async with supervised(env, tmp_path) as platform, httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            ingest = platform.url("ingest")
            await open_accounts(client, ingest, urls_of(platform), people)
            await post_until_accepted(client, ingest, first)
            postgres.stop()  # fast shutdown: every connection of every service is cut
            postgres = start_postgres(tmp_path / "postgres")
            await post_until_accepted(client, ingest, second)
            await assert_exact(client, urls_of(platform), people)
    finally:
        postgres.stop()


async def test_broker_restart_mid_stream_recovers_by_itself(isolated: Isolation, tmp_path: Path) -> None:
    port = free_port()
    broker = start_broker(port, tmp_path / "broker.log")
    try:
        env = {**isolated.env(), "RETAIN_KAFKA_BOOTSTRAP": broker.bootstrap}
        people = customers(CUSTOMERS, "br")
        first, second = chunks(after_opening(people), 2)
        async with supervised(env, tmp_path) as platform, httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            ingest = platform.url("ingest")
            await open_accounts(client, ingest, urls_of(platform), people)
            await post_until_accepted(client, ingest, first)
            await asyncio.sleep(0.5)  # some of it consumed, some derived events in flight
            broker.stop()  # memory only: messages, topics and committed offsets are gone
            broker = start_broker(port, tmp_path / "broker.log")
            await post_until_accepted(client, ingest, second)
            await assert_exact(client, urls_of(platform), people)
    finally:
        broker.stop()
