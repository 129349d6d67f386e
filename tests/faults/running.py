"""`retain run` as a user starts it: its own data directory, embedded PostgreSQL and broker, free ports."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from retain_cli.embedded import free_port, port_free
from retain_cli.supervisor import PROCESSES
from tests.conftest import FAST_GROUP_JOIN, TEST_API_KEYS
from tests.faults.harness import SMALL_BASE, Urls

START_TIMEOUT_S = 180.0


@dataclass
class RetainRun:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in (*PROCESSES, "broker")})
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def output_path(self) -> Path:
        return self.data_dir / f"run-{self.runs}.out"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("RETAIN_DATABASE_URL", "RETAIN_KAFKA_BOOTSTRAP", "RETAIN_TOPIC_PREFIX")
        }
        env.update({f"RETAIN_{name.upper()}_PORT": str(port) for name, port in self.ports.items()})
        env.update({f"RETAIN_{name.upper()}": str(value) for name, value in FAST_GROUP_JOIN.items()})
        env.update(SMALL_BASE)
        env["RETAIN_API_KEYS"] = json.dumps(TEST_API_KEYS)
        env["RETAIN_TOPIC_PARTITIONS"] = "2"
        env.update(extra)
        return env

    def start(self, **extra: str) -> subprocess.Popen[bytes]:
        self.runs += 1
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "retain_cli.main", "run", "--data-dir", str(self.data_dir)],
                env=self.env(**extra),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # signals in the test reach it alone, as a terminal's would
            )
        return self.process

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    async def running(self) -> None:
        """Until the supervisor says every service is up (it prints the URLs)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        assert self.process is not None
        while "Ctrl-C stops everything" not in self.output():
            assert self.process.poll() is None, f"retain run exited early:\n{self.output()}"
            assert loop.time() < deadline, f"retain run did not start:\n{self.output()}"
            await asyncio.sleep(0.5)
        assert "not ready after" not in self.output(), self.output()

    async def exited(self, timeout_s: float = 300) -> int:
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.process.poll() is None:
            assert loop.time() < deadline, f"retain run did not exit:\n{self.output()}"
            await asyncio.sleep(0.2)
        return self.process.returncode

    def interrupt(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)

    def urls(self) -> Urls:
        return Urls(
            *(f"http://127.0.0.1:{self.ports[name]}" for name in ("profile", "scoring", "campaign", "feedback"))
        )

    @property
    def ingest_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}"

    def started_processes(self) -> list[psutil.Process]:
        """What this run started, read from its pid files and PostgreSQL's own, with their children."""
        pids = [int(path.read_text().split()[0]) for path in (self.data_dir / "run").glob("*.pid")]
        postmaster = self.data_dir / "postgres" / "postmaster.pid"
        if postmaster.exists():
            pids.append(int(postmaster.read_text().split()[0]))
        found: list[psutil.Process] = []
        for pid in pids:
            try:
                process = psutil.Process(pid)
                found += [process, *process.children(recursive=True)]
            except psutil.Error:
                pass
        return found

    def ports_in_use(self) -> list[int]:
        return [port for port in self.ports.values() if not port_free("127.0.0.1", port)]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    living = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                living.append(process)
        except psutil.Error:
            pass
    return living


def mentioning(directory: Path) -> list[psutil.Process]:
    """Live processes whose command line names `directory` (PostgreSQL is started with `-D <data dir>`)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(str(directory) in part for part in process.info["cmdline"] or ()) and process.status() != "zombie":
                found.append(process)
        except psutil.Error:
            pass
    return found
