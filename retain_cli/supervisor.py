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

from libs.common.lifetime import dying_with_this_process
from retain_cli.pidfiles import PidFiles

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
# Lag must read zero this many times in a row, a second apart: a consumer's last batch leaves derived events in
# its outbox, which its relay publishes a moment later as lag on the next topic.
DRAIN_ZERO_READINGS = 2
DRAIN_PROGRESS_EVERY_S = 5.0
# A second Ctrl-C: services get this long to stop before they are killed.
HURRIED_STOP_S = 3.0


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
    # Where the pid of every child is kept, so that the next run finds what this one left behind.
    pid_files: PidFiles | None = None
    children: dict[str, ManagedProcess] = field(default_factory=dict)
    stopping: bool = False
    # Children stopped on purpose: never restarted.
    held: set[str] = field(default_factory=set)
    # Set by a second Ctrl-C: stop now, without waiting for consumers to drain.
    hurry: asyncio.Event = field(default_factory=asyncio.Event)

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
                # Killed outright, the supervisor runs no cleanup: the kernel stops the children instead.
                preexec_fn=dying_with_this_process(signal.SIGTERM),
            )
        child.last_start = time.monotonic()
        if self.pid_files is not None:
            self.pid_files.record(child.name, child.process.pid)

    def _links(self, name: str) -> dict[str, str]:
        """Addresses one service needs of others: the console reads every API; messages link to customer pages."""
        links = {
            "RETAIN_UNSUBSCRIBE_BASE_URL": self.url("ingest"),
            "RETAIN_SURVEY_LINK_BASE_URL": self.url("feedback"),
            # Ingest's key service, from which consumers fetch the data keys of sealed personal data.
            "RETAIN_KEY_SERVICE_URL": self.url("ingest"),
        }
        if name == "profile":
            # The data subject's export gathers every service's part.
            links |= {
                f"RETAIN_EXPORT_{other.upper()}_URL": self.url(other)
                for other in ("ingest", "scoring", "campaign", "feedback")
            }
        if name == "console":
            links |= {f"RETAIN_CONSOLE_{other.upper()}_URL": self.url(other) for other in SERVICES if other != name}
        # What the environment sets explicitly (a public hostname in front of the pages) wins.
        return {key: value for key, value in links.items() if key not in self.env}

    def watch(self) -> None:
        """Restarts crashed children with exponential backoff; call periodically."""
        now = time.monotonic()
        for child in self.children.values():
            if self.stopping or child.name in self.held or child.process is None or child.process.poll() is None:
                continue
            if child.next_start == 0.0:
                # Worker processes of a service that was killed must not keep its port.
                _kill_group(child.process.pid)
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
        self.held.update(names)
        for name in names:
            child = self.children.get(name)
            if child is not None and child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for name in names:
            child = self.children.get(name)
            if child is None or child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The whole session: a service's worker processes must not outlive it.
            _kill_group(child.process.pid)
            child.process.wait()
            if self.pid_files is not None:
                self.pid_files.forget(name)

    async def shutdown(self, drain_timeout_s: float | None = None) -> bool:
        """Ingest first, so nothing new arrives; then wait until every consumer has caught up.

        No time limit by default: the embedded broker forgets what is left, so stopping early only moves the work to
        the next start (publishers re-send what they published within their redelivery window). A second Ctrl-C
        (`hurry`) stops at once. Returns whether every consumer drained.
        """
        print("stopping ingest ...")
        self.stop(("ingest",), timeout_s=HURRIED_STOP_S if self.hurry.is_set() else 25)
        drained = False if self.hurry.is_set() else await self.drain(drain_timeout_s)
        self.stopping = True
        consumers = tuple(name for name in self.children if name != "ingest")
        print(f"stopping {', '.join(consumers)} ...")
        self.stop(consumers, timeout_s=HURRIED_STOP_S if self.hurry.is_set() else 25)
        return drained

    async def drain(self, timeout_s: float | None = None) -> bool:
        """Waits until every consumer group's lag reads zero; crashed consumers are still restarted meanwhile."""
        from retain_cli.lag import total_lag

        groups = consumer_groups()
        bootstrap = self.env["RETAIN_KAFKA_BOOTSTRAP"]
        prefix = self.env.get("RETAIN_TOPIC_PREFIX", "")
        started = time.monotonic()
        zero_readings = 0
        last_report = (started, -1)
        hint_shown = False
        while not self.hurry.is_set():
            self.watch()
            try:
                lag = await asyncio.wait_for(total_lag(bootstrap, prefix, groups), 10)
            except Exception as exc:
                lag = -1
                print(f"  cannot read consumer lag ({exc!r}); trying again")
            if lag == 0:
                zero_readings += 1
                if zero_readings >= DRAIN_ZERO_READINGS:
                    print(f"  every consumer has drained its lag ({time.monotonic() - started:.0f}s)")
                    return True
            else:
                zero_readings = 0
            now = time.monotonic()
            if lag > 0 and (last_report[1] < 0 or now - last_report[0] >= DRAIN_PROGRESS_EVERY_S):
                rate = (last_report[1] - lag) / (now - last_report[0]) if last_report[1] >= 0 else 0.0
                eta = f", about {lag / rate:.0f}s left" if rate > 0 else ""
                print(f"  waiting for consumers to drain: lag {lag} ({rate:.0f}/s{eta})", flush=True)
                if not hint_shown:
                    print("  (Ctrl-C again stops now; the next start re-sends what was not consumed)", flush=True)
                    hint_shown = True
                last_report = (now, lag)
            if timeout_s is not None and now - started > timeout_s:
                print(f"  lag still {lag} after {timeout_s:.0f}s; stopping (the next start re-sends it)")
                return False
            try:
                await asyncio.wait_for(self.hurry.wait(), 1.0)
            except TimeoutError:
                pass
        print("  stopping without waiting for consumers (the next start re-sends what was not consumed)")
        return False


def _kill_group(pid: int) -> None:
    """Children run in their own session: the group id is the child's pid, and its workers are members."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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
