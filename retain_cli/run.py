"""`retain run`: the whole platform on one machine, embedded database and broker unless configured."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from pathlib import Path

from retain_cli.embedded import EmbeddedBroker, EmbeddedPostgres, start_broker, start_postgres
from retain_cli.supervisor import PROCESSES, Supervisor, configured_ports

READY_TIMEOUT_S = 90


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


def platform_env(data_dir: Path) -> tuple[dict[str, str], EmbeddedPostgres | None, EmbeddedBroker | None, str | None]:
    env = dict(os.environ)
    postgres = broker = None
    if "RETAIN_DATABASE_URL" not in env:
        print(f"starting embedded PostgreSQL (data in {data_dir / 'postgres'}) ...")
        postgres = start_postgres(data_dir / "postgres")
        postgres.create_database("retain")
        env["RETAIN_DATABASE_URL"] = postgres.database_url("retain")
    if "RETAIN_KAFKA_BOOTSTRAP" not in env:
        port = int(env.get("RETAIN_BROKER_PORT", "9092"))
        print(f"starting embedded Kafka-compatible broker (Tansu) on 127.0.0.1:{port} ...")
        broker = start_broker(port, data_dir / "logs" / "broker.log")
        env["RETAIN_KAFKA_BOOTSTRAP"] = broker.bootstrap
    # Campaign signs unsubscribe links and ingest checks them: one key for both processes. All three keys are kept
    # so that links sent, and console sessions opened, before a restart still work after it.
    for variable, name in (
        ("RETAIN_UNSUBSCRIBE_TOKEN_SECRET", "unsubscribe-secret"),
        ("RETAIN_SURVEY_TOKEN_SECRET", "survey-secret"),
        ("RETAIN_CONSOLE_SESSION_SECRET", "console-session-secret"),
    ):
        env.setdefault(variable, dev_secret(data_dir, name))
    key = None
    if "RETAIN_API_KEYS" not in env:
        key = dev_api_key(data_dir)
        env["RETAIN_API_KEYS"] = json.dumps({key: {"source": "dev", "scopes": ["admin"]}})
    return env, postgres, broker, key


async def run(data_dir: Path) -> int:
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    env, postgres, broker, key = platform_env(data_dir)
    supervisor = Supervisor(env=env, ports=configured_ports(), log_dir=data_dir / "logs")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        supervisor.start_all()
        ready = await supervisor.wait_ready(READY_TIMEOUT_S)
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
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
        print("\nshutting down ...")
        await supervisor.shutdown()
    finally:
        supervisor.stopping = True
        supervisor.stop(PROCESSES, timeout_s=10)
        if broker is not None:
            print("stopping broker ...")
            broker.stop()
        if postgres is not None:
            print("stopping PostgreSQL ...")
            postgres.stop()
    print("stopped.")
    return 0
