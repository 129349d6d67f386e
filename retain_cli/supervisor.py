"""Runs the services as separate processes, restarts any that crash, and stops them in order."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

SERVICES = ("ingest", "profile", "scoring", "campaign", "feedback", "insights")
# Processes besides the services: the console only reads their HTTP APIs (no schema, no topics, no outbox), so what is
# said of every service (consumer groups, deployments, outbox metrics, `retain status`) does not hold for it.
CONSOLE = "console"
PROCESSES = (*SERVICES, CONSOLE)
DEFAULT_PORTS = {
    "ingest": 8001,
    "profile": 8002,
    "scoring": 8003,
    "campaign": 8004,
    "feedback": 8005,
    "insights": 8006,
    "console": 8007,
}
# The front door takes upstream bursts: two worker processes use both cores of a small machine.
DEFAULT_HTTP_WORKERS = {"ingest": 2}
MAX_RESTART_DELAY_S = 30.0


@dataclass
class ManagedProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    last_start: float = 0.0
    next_start: float = 0.0


@dataclass
class Supervisor:
    env: dict[str, str]
    ports: dict[str, int]
    log_dir: Path
    host: str = "127.0.0.1"
    children: dict[str, ManagedProcess] = field(default_factory=dict)
    stopping: bool = False

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.ports[name]}"

    def start_all(self) -> None:
        """Every service, and the console when it was given a port."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in (name for name in PROCESSES if name in self.ports):
            self.children[name] = ManagedProcess(name, self.ports[name])
            self._start(self.children[name])

    def _start(self, child: ManagedProcess) -> None:
        env = {
            **self.env,
            "RETAIN_SERVICE": child.name,
            "RETAIN_HTTP_HOST": self.host,
            "RETAIN_HTTP_PORT": str(child.port),
            "RETAIN_HTTP_WORKERS": self.env.get(
                f"RETAIN_{child.name.upper()}_HTTP_WORKERS", str(DEFAULT_HTTP_WORKERS.get(child.name, 1))
            ),
        }
        env.update(self._links(child.name))
        with open(self.log_dir / f"{child.name}.log", "ab") as output:
            child.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{child.name}"],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C goes to the supervisor, which stops children in order
            )
        child.last_start = time.monotonic()

    def _links(self, name: str) -> dict[str, str]:
        """Addresses one service needs of others: the console reads every API; messages link to customer pages."""
        links = {
            "RETAIN_UNSUBSCRIBE_BASE_URL": self.url("ingest"),
            "RETAIN_SURVEY_LINK_BASE_URL": self.url("feedback"),
        }
        if name == "console":
            links |= {f"RETAIN_CONSOLE_{other.upper()}_URL": self.url(other) for other in SERVICES if other != name}
        # What the environment sets explicitly (a public hostname in front of the pages) wins.
        return {key: value for key, value in links.items() if key not in self.env}

    def watch(self) -> None:
        """Restarts crashed children with exponential backoff; call periodically."""
        now = time.monotonic()
        for child in self.children.values():
            if self.stopping or child.process is None or child.process.poll() is None:
                continue
            if child.next_start == 0.0:
                # A process that ran a while before dying gets a fresh backoff.
                if now - child.last_start > 60:
                    child.restarts = 0
                delay = min(MAX_RESTART_DELAY_S, 0.5 * 2**child.restarts)
                child.next_start = now + delay
                print(f"  {child.name} exited with code {child.process.returncode}; restarting in {delay:.1f}s")
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._start(child)

    async def wait_ready(self, timeout_s: float) -> dict[str, bool]:
        deadline = time.monotonic() + timeout_s
        ready = dict.fromkeys(self.children, False)
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline and not all(ready.values()):
                for name in self.children:
                    if ready[name]:
                        continue
                    try:
                        response = await client.get(self.url(name) + "/readyz")
                        ready[name] = response.status_code == 200 and response.json().get("status") == "ready"
                    except httpx.HTTPError:
                        pass
                self.watch()
                await asyncio.sleep(0.25)
        return ready

    def stop(self, names: tuple[str, ...], timeout_s: float = 25) -> None:
        names = tuple(name for name in names if name in self.children)
        for name in names:
            process = self.children[name].process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name in names:
            process = self.children[name].process
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # The whole session: a service's worker processes must not outlive it.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    async def shutdown(self, drain_timeout_s: float = 60) -> None:
        """Ingest first, so nothing new arrives; then wait until every consumer has caught up."""
        self.stopping = True
        print("stopping ingest ...")
        self.stop(("ingest",))
        await self.drain(drain_timeout_s)
        consumers = tuple(name for name in self.children if name != "ingest")
        print(f"stopping {', '.join(consumers)} ...")
        self.stop(consumers)

    async def drain(self, timeout_s: float) -> None:
        from retain_cli.lag import total_lag

        groups = consumer_groups()
        bootstrap = self.env["RETAIN_KAFKA_BOOTSTRAP"]
        prefix = self.env.get("RETAIN_TOPIC_PREFIX", "")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                lag = await asyncio.wait_for(total_lag(bootstrap, prefix, groups), 10)
            except Exception as exc:
                print(f"  cannot read consumer lag ({exc!r}); stopping anyway")
                return
            if lag == 0:
                print("  every consumer has drained its lag")
                return
            if time.monotonic() > deadline:
                print(f"  lag still {lag} after {timeout_s:.0f}s; stopping anyway (replay can recover it)")
                return
            print(f"  waiting for consumers to drain: lag {lag}")
            await asyncio.sleep(1)


def consumer_groups() -> dict[str, tuple[str, ...]]:
    """Every consumer group of the platform and its topics, from the services' own definitions.

    The broker is asked for lag of groups we name, because Tansu does not list consumer groups.
    Building an app has no side effects: connections are made by its lifespan, which is not run.
    """
    import importlib

    groups: dict[str, tuple[str, ...]] = {}
    for name in SERVICES:
        app = importlib.import_module(f"services.{name}.bootstrap").create_app()
        definition = app.state.definition
        for subscription in definition.subscriptions:
            groups[f"{definition.name}.{subscription.name}"] = subscription.topics
    return groups


def configured_ports() -> dict[str, int]:
    return {name: int(os.environ.get(f"RETAIN_{name.upper()}_PORT", port)) for name, port in DEFAULT_PORTS.items()}
