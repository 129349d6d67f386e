"""`retain run`: the whole platform on one machine, embedded database and broker unless configured."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from retain_cli.embedded import EmbeddedBroker, EmbeddedPostgres, port_free, start_broker, start_postgres
from retain_cli.pidfiles import PidFiles
from retain_cli.supervisor import PROCESSES, Supervisor, configured_ports

READY_TIMEOUT_S = 90
HOST = "127.0.0.1"
# Exit status when `retain run` cannot start (a port taken, the database or broker failing).
START_FAILED = 3


def dev_api_key(data_dir: Path) -> str:
    """Kept under .data/ so the key printed by one `make run` still works after the next."""
    path = data_dir / "dev-api-key"
    if path.exists():
        return path.read_text().strip()
    key = "dev-" + secrets.token_urlsafe(24)
    path.write_text(key)
    path.chmod(0o600)
    return key


def dev_secret(data_dir: Path, name: str) -> str:
    """A signing key kept under .data/, so links sent before a restart still open after it."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def dev_master_key_file(data_dir: Path) -> str:
    """The master key of crypto-shredding, kept under .data/: without it every sealed event is unreadable."""
    path = data_dir / "master.key"
    if not path.exists():
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return str(path)


@dataclass
class Embedded:
    """What this run started itself, so a failed start stops exactly that."""

    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None

    def stop(self, pid_files: PidFiles) -> None:
        if self.broker is not None:
            print("stopping broker ...")
            self.broker.stop()
            pid_files.forget("broker")
        if self.postgres is not None:
            print("stopping PostgreSQL ...")
            self.postgres.stop()


def broker_port(env: dict[str, str]) -> int:
    return int(env.get("RETAIN_BROKER_PORT", "9092"))


def taken_ports(env: dict[str, str], ports: dict[str, int]) -> list[str]:
    """Every port this run would listen on that something else holds, named by what we wanted it for."""
    wanted = dict(ports)
    if "RETAIN_KAFKA_BOOTSTRAP" not in env:
        wanted["broker"] = broker_port(env)
    return [f"{port} ({name})" for name, port in wanted.items() if not port_free(HOST, port)]


def platform_env(data_dir: Path, embedded: Embedded, pid_files: PidFiles) -> tuple[dict[str, str], str | None]:
    env = dict(os.environ)
    if "RETAIN_DATABASE_URL" not in env:
        print(f"starting embedded PostgreSQL (data in {data_dir / 'postgres'}) ...")
        embedded.postgres = start_postgres(data_dir / "postgres")
        embedded.postgres.create_database("retain")
        env["RETAIN_DATABASE_URL"] = embedded.postgres.database_url("retain")
    if "RETAIN_KAFKA_BOOTSTRAP" not in env:
        port = broker_port(env)
        print(f"starting embedded Kafka-compatible broker (Tansu) on {HOST}:{port} ...")
        embedded.broker = start_broker(port, data_dir / "logs" / "broker.log")
        pid_files.record("broker", embedded.broker.process.pid)
        env["RETAIN_KAFKA_BOOTSTRAP"] = embedded.broker.bootstrap
    # Campaign signs unsubscribe links and ingest checks them: one key for both processes. All three keys are kept
    # so that links sent, and console sessions opened, before a restart still work after it.
    for variable, name in (
        ("RETAIN_UNSUBSCRIBE_TOKEN_SECRET", "unsubscribe-secret"),
        ("RETAIN_SURVEY_TOKEN_SECRET", "survey-secret"),
        ("RETAIN_CONSOLE_SESSION_SECRET", "console-session-secret"),
    ):
        env.setdefault(variable, dev_secret(data_dir, name))
    if "RETAIN_MASTER_KEY" not in env:
        env.setdefault("RETAIN_MASTER_KEY_FILE", dev_master_key_file(data_dir))
    key = None
    if "RETAIN_API_KEYS" not in env:
        key = dev_api_key(data_dir)
        env["RETAIN_API_KEYS"] = json.dumps({key: {"source": "dev", "scopes": ["admin"]}})
    return env, key


def restart_broker_if_dead(embedded: Embedded, pid_files: PidFiles, data_dir: Path) -> None:
    """The embedded broker crashed or was killed: a new one on the same port. It starts empty; every service notices
    its marker topic gone and re-sends what it published within its redelivery window."""
    broker = embedded.broker
    if broker is None or broker.process.poll() is None:
        return
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    print(f"  broker exited with code {broker.process.returncode}; starting it again (the services re-send)")
    try:
        embedded.broker = start_broker(port, data_dir / "logs" / "broker.log")
    except RuntimeError as exc:
        print(f"  cannot restart the broker ({exc}); trying again", file=sys.stderr)
        return
    pid_files.record("broker", embedded.broker.process.pid)


def stop_earlier_run(pid_files: PidFiles) -> None:
    """A broker or service of an earlier run of this data directory (its supervisor was killed) holds our ports."""
    for stale in pid_files.stop_stale():
        print(f"stopped {stale.name} (pid {stale.pid}), left running by an earlier run of this data directory")


async def run(data_dir: Path) -> int:
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    pid_files = PidFiles(data_dir / "run")
    stop_earlier_run(pid_files)
    ports = configured_ports()
    taken = taken_ports(dict(os.environ), ports)
    if taken:
        print(
            f"cannot start: port {', '.join(taken)} already in use by another program; "
            "free it or choose another port (RETAIN_<SERVICE>_PORT, RETAIN_BROKER_PORT)",
            file=sys.stderr,
        )
        return START_FAILED
    stop = asyncio.Event()
    supervisor: Supervisor | None = None
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # The first asks for an orderly stop; the next one says do not wait.
        if stop.is_set() and supervisor is not None:
            supervisor.hurry.set()
        stop.set()

    # SIGHUP: the terminal was closed; stop as on Ctrl-C rather than die with everything still running.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, on_signal)
    embedded = Embedded()
    try:
        try:
            env, key = platform_env(data_dir, embedded, pid_files)
        except Exception as exc:
            print(f"cannot start: {exc}", file=sys.stderr)
            return START_FAILED
        supervisor = Supervisor(env=env, ports=ports, log_dir=data_dir / "logs", host=HOST, pid_files=pid_files)
        supervisor.start_all()
        ready = await _wait_ready_or_stop(supervisor, stop)
        if not stop.is_set():
            if not all(ready.values()):
                waiting = ", ".join(name for name, ok in ready.items() if not ok)
                print(f"not ready after {READY_TIMEOUT_S}s: {waiting} (logs in {data_dir / 'logs'})", file=sys.stderr)
            print("\nRetain is running:")
            for name in PROCESSES:
                if name == "console":
                    print(f"  {name:<9} {supervisor.url(name)}   pages for people: sign in with an API key")
                else:
                    print(f"  {name:<9} {supervisor.url(name)}   docs: {supervisor.url(name)}/docs")
            if key:
                print(f"\ndevelopment API key (admin): {key}")
                print(f"  try: curl -H 'Authorization: Bearer {key}' {supervisor.url('profile')}/v1/customers/c-1")
            print(f"logs: {data_dir / 'logs'}   Ctrl-C stops everything\n", flush=True)
        while not stop.is_set():
            supervisor.watch()
            restart_broker_if_dead(embedded, pid_files, data_dir)
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
        print("\nshutting down (Ctrl-C again to stop at once) ...", flush=True)
        await supervisor.shutdown()
    finally:
        if supervisor is not None:
            supervisor.stopping = True
            supervisor.stop(PROCESSES, timeout_s=3 if supervisor.hurry.is_set() else 10)
        embedded.stop(pid_files)
    print("stopped.")
    return 0


async def _wait_ready_or_stop(supervisor: Supervisor, stop: asyncio.Event) -> dict[str, bool]:
    """Readiness, unless Ctrl-C comes first."""
    waiting = asyncio.ensure_future(supervisor.wait_ready(READY_TIMEOUT_S))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not waiting.done():
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        return dict.fromkeys(supervisor.children, False)
    return waiting.result()
