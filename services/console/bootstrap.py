"""Wiring of the console: a server-rendered UI over the other services' HTTP APIs. It owns no tables and no topics,
so it needs neither a database nor the broker; `/readyz` says which services it can reach."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from libs.common import metrics
from libs.common.logs import configure_logging
from libs.common.problems import install_problem_handlers
from libs.common.runtime import HttpMetricsMiddleware
from libs.common.settings import Settings
from libs.common.unsubscribe import secret_of
from services.console.adapters.upstreams import SERVICES, Upstreams
from services.console.domain.session import SessionKeys
from services.console.entrypoints.pages import SignInRequired, router
from services.console.settings import console_settings

NAME = "console"


def create_app(
    settings: Settings | None = None, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> FastAPI:
    """`transports` lets tests route each service's calls to an app in the same process."""
    console = console_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(console.service, console.log_level)
        app.state.upstreams = Upstreams(console, transports)
        try:
            yield
        finally:
            await app.state.upstreams.aclose()
            metrics.worker_exited()

    app = FastAPI(title="Retain console", version="1.0.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = console
    app.state.session_keys = SessionKeys(secret_of(console.console_session_secret))
    install_problem_handlers(app)
    app.add_middleware(
        HttpMetricsMiddleware,
        service=console.service,
        max_body_bytes=console.max_body_bytes,
        streamed_paths=frozenset(),
    )

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(f"/login?{urlencode({'next': exc.next_path})}", status_code=303)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        # Ready as soon as it serves: pages render whatever the services answer, so none of them gates it.
        upstreams: Upstreams = request.app.state.upstreams
        reachable = await asyncio.gather(*(upstreams.ready(name) for name in SERVICES))
        services = {name: "up" if up else "down" for name, up in zip(SERVICES, reachable, strict=True)}
        return JSONResponse({"status": "ready", "services": services})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    return app
