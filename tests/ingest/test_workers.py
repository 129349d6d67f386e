"""Ingest served by two worker processes on one port, as `retain run` starts it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from retain_cli.embedded import free_port
from services.ingest.bootstrap import create_app
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, event, ingest_settings, read_topic, start
from tests.waiting import eventually

EVENTS = 40


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    metrics_dir: Path

    def workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.process.pid).children(recursive=True)
        return [child for child in children if "spawn_main" in " ".join(child.cmdline())]

    def latency_files(self) -> set[str]:
        """One file per process that recorded a request latency (prometheus_client multiprocess mode)."""
        return {path.name for path in self.metrics_dir.glob("histogram_*.db")}


@pytest.fixture
def two_workers(isolated: Isolation, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    env = {
        **isolated.env(),
        "RETAIN_HTTP_PORT": str(port),
        "RETAIN_HTTP_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    with open(tmp_path / "ingest.log", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.ingest"], env=env, stdout=log, stderr=log)
    server = Server(f"http://127.0.0.1:{port}", process, tmp_path)
    workers: list[psutil.Process] = []
    try:
        yield server
    finally:
        workers = server.workers()
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0, (tmp_path / "ingest.log").read_text()[-2000:]
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE], "workers outlived it"


def accepted_total(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("retain_ingest_events_total{") and 'outcome="accepted"' in line
    )


async def test_two_workers_share_the_port_and_one_merged_metrics_view(two_workers: Server, isolated: Isolation) -> None:
    url = two_workers.url

    async def ready() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    await eventually(ready, timeout_s=60)
    assert len(two_workers.workers()) == 2

    # A new connection per request: the kernel hands them to either worker.
    async def post(n: int) -> int:
        async with httpx.AsyncClient(base_url=url, headers=SHOP) as client:
            return (await client.post("/v1/events", json=event(f"w-{n}"))).status_code

    assert await asyncio.gather(*(post(n) for n in range(EVENTS))) == [202] * EVENTS
    on_topic = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=EVENTS)
    assert sorted(e.id for e in on_topic) == sorted(f"w-{n}" for n in range(EVENTS))

    # Whichever worker answers the scrape reports the accepted events of both.
    for _ in range(6):
        async with httpx.AsyncClient() as client:
            assert accepted_total((await client.get(f"{url}/metrics")).text) == EVENTS
    assert len(two_workers.latency_files()) == 2, "both workers should have served requests"


async def test_each_worker_enforces_its_share_of_a_keys_rate_limit(isolated: Isolation) -> None:
    app = create_app(ingest_settings(isolated, ingest_rate_limit_per_s=4, ingest_rate_burst_s=1, http_workers=2))
    async for client in start(app):
        statuses = [(await client.post("/v1/events", json=event(f"r{i}"), headers=SHOP)).status_code for i in range(3)]
        # 4 per second across two workers: this one lets 2 through.
        assert statuses == [202, 202, 429]
