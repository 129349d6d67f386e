"""`python -m services.<name>`: one uvicorn server per service, with one or several worker processes."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from libs.common.metrics import MULTIPROCESS_DIR_ENV
from libs.common.settings import Settings

# Workers are fresh interpreters (spawned): they find the service's app factory by name in the environment.
_FACTORY_ENV = "RETAIN_APP_FACTORY"


def serve(create_app: Callable[[Settings], FastAPI], service: str) -> None:
    settings = Settings(service=service)
    if settings.http_workers == 1:
        _run(create_app(settings), settings)
        return
    os.environ[_FACTORY_ENV] = f"{create_app.__module__}:{create_app.__name__}"
    os.environ["RETAIN_SERVICE"] = service
    own_metrics_dir = MULTIPROCESS_DIR_ENV not in os.environ
    if own_metrics_dir:
        # Must be empty at start: files left by an earlier run would be merged into this one's figures.
        os.environ[MULTIPROCESS_DIR_ENV] = tempfile.mkdtemp(prefix=f"retain-{service}-metrics-")
    try:
        _run("libs.common.serve:app_from_environment", settings, factory=True, workers=settings.http_workers)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ[MULTIPROCESS_DIR_ENV], ignore_errors=True)


def _run(app: FastAPI | str, settings: Settings, **options: Any) -> None:
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging is configured by the app factory
        access_log=False,
        timeout_graceful_shutdown=20,
        **options,
    )


def app_from_environment() -> FastAPI:
    """The app of one worker process (uvicorn's factory)."""
    module, _, name = os.environ[_FACTORY_ENV].partition(":")
    create_app: Callable[[Settings], FastAPI] = getattr(importlib.import_module(module), name)
    return create_app(Settings())
