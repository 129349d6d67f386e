"""`python -m services.<name>`: one uvicorn server per service, with one or several worker processes.

Several workers each listen on a socket of their own, bound to the same port with SO_REUSEPORT, so that the kernel
spreads new connections evenly over them. With one shared socket (uvicorn's own `workers=`), whichever worker woke
first accepted a whole burst of connections, such as a client's connection pool opening: all 16 keep-alive connections
of bench_ingest once landed on one worker and the other stayed idle for as long as they lived (b/a 0.37 against 0.57).
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from libs.common.metrics import MULTIPROCESS_DIR_ENV
from libs.common.settings import Settings

log = logging.getLogger(__name__)

# Workers are fresh interpreters (spawned): they find the service's app factory by name in the environment.
_FACTORY_ENV = "RETAIN_APP_FACTORY"
_GRACEFUL_SHUTDOWN_S = 20
_BACKLOG = 2048  # uvicorn's default


def serve(create_app: Callable[[Settings], FastAPI], service: str) -> None:
    settings = Settings(service=service)
    if settings.http_workers == 1:
        _run(_server(create_app(settings), settings))
        return
    os.environ[_FACTORY_ENV] = f"{create_app.__module__}:{create_app.__name__}"
    os.environ["RETAIN_SERVICE"] = service
    own_metrics_dir = MULTIPROCESS_DIR_ENV not in os.environ
    if own_metrics_dir:
        # Must be empty at start: files left by an earlier run would be merged into this one's figures.
        os.environ[MULTIPROCESS_DIR_ENV] = tempfile.mkdtemp(prefix=f"retain-{service}-metrics-")
    try:
        _supervise_workers(settings)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ[MULTIPROCESS_DIR_ENV], ignore_errors=True)


def _server(app: FastAPI | str, settings: Settings, **options: Any) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging is configured by the app factory
        access_log=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
        backlog=_BACKLOG,
        **options,
    )
    return uvicorn.Server(config)


def _run(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _supervise_workers(settings: Settings) -> None:
    """Runs `http_workers` processes until SIGTERM or SIGINT; a worker that dies is replaced, as uvicorn does.

    A worker that could not start (its app's startup failed) stops them all: restarting it would only loop.
    """
    _fail_if_port_taken(settings.http_host, settings.http_port)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    workers = [_start_worker() for _ in range(settings.http_workers)]
    failed_to_start = False
    while not stopping.wait(0.5):
        for index, worker in enumerate(workers):
            if worker.is_alive():
                continue
            if worker.exitcode == STARTUP_FAILURE:
                log.critical("a worker could not start; stopping")
                failed_to_start = True
                stopping.set()
                break
            log.error("worker %s exited with %s; starting another", worker.pid, worker.exitcode)
            workers[index] = _start_worker()
    for worker in workers:
        if worker.pid is not None and worker.is_alive():
            os.kill(worker.pid, signal.SIGTERM)
    for worker in workers:
        worker.join(_GRACEFUL_SHUTDOWN_S + 10)
        if worker.is_alive():
            worker.kill()
            worker.join()
    if failed_to_start:
        sys.exit(STARTUP_FAILURE)


def _start_worker() -> BaseProcess:
    worker = multiprocessing.get_context("spawn").Process(target=_run_worker, name="retain-http-worker")
    worker.start()
    return worker


def _run_worker() -> None:
    settings = Settings()
    server = _server("libs.common.serve:app_from_environment", settings, factory=True)
    _run(server, [_listening_socket(settings.http_host, settings.http_port, reuse_port=True)])


def _listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    return sock


def _fail_if_port_taken(host: str, port: int) -> None:
    """SO_REUSEPORT would let a second server on the same port silently take half of the connections: refuse instead."""
    _listening_socket(host, port, reuse_port=False).close()


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory)."""
    module, _, name = os.environ[_FACTORY_ENV].partition(":")
    create_app: Callable[[Settings], FastAPI] = getattr(importlib.import_module(module), name)
    return create_app(Settings())
