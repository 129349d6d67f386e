"""`python -m services.<name>`: one uvicorn process per service."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from libs.common.settings import Settings


def serve(create_app: Callable[[Settings], FastAPI], service: str) -> None:
    settings = Settings(service=service)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging is configured by the app factory
        access_log=False,
        timeout_graceful_shutdown=20,
    )
