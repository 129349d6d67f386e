"""Wiring of ingest: the shared runtime plus ingest's own pool, circuit, relay and OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from services.ingest.adapters.event_log import create_pool
from services.ingest.adapters.tables import SCHEMA, messaging
from services.ingest.context import IngestContext
from services.ingest.domain.circuit import Circuit
from services.ingest.entrypoints import api, imports, openapi
from services.ingest.entrypoints.fast import SingleEventFastPath
from services.ingest.handlers.group_commit import GroupCommitter
from services.ingest.handlers.relay import relay_forever
from services.ingest.settings import IngestSettings

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain ingest",
    description="The front door: upstream shops and ERPs post events; validated, deduplicated, published.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    routers=[api.router, imports.router],
    ready_without_broker=True,
)

# Ingest never writes to the shared messaging outbox: its event log is its outbox, drained by its own
# relay. Polling that empty table every 50 ms (the shared default) through SQLAlchemy cost ~10 % of a
# core on the request path's process; unless configured explicitly, ingest polls it rarely.
SHARED_OUTBOX_POLL_S = 5.0


class StreamedImports:
    """The shared body-size guard rejects by Content-Length; imports are streamed and may be any size."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == imports.IMPORTS_PATH:
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"content-length"]}
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    if isinstance(settings, IngestSettings):
        ingest_settings = settings
    else:
        # The shared settings as given, plus RETAIN_INGEST_* from the environment.
        ingest_settings = IngestSettings(**(settings.model_dump() if settings else {"service": SCHEMA}))
        if "outbox_poll_interval_s" not in (settings.model_fields_set if settings else set()):
            ingest_settings = ingest_settings.model_copy(update={"outbox_poll_interval_s": SHARED_OUTBOX_POLL_S})
    app = create_service_app(DEFINITION, ingest_settings)
    shared_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with shared_lifespan(app) as state:
            runtime = app.state.runtime
            pool = await create_pool(runtime.settings.database_url, runtime.settings.database_pool_size)
            ctx = IngestContext(
                runtime=runtime,
                settings=runtime.settings,
                pool=pool,
                circuit=Circuit(open_for_s=runtime.settings.ingest_circuit_open_s),
            )
            ctx.committer = GroupCommitter(
                ctx,
                window_s=ctx.settings.ingest_group_commit_window_s,
                max_items=ctx.settings.ingest_max_batch_items,
                max_inflight=ctx.settings.ingest_group_commit_max_inflight,
            )
            app.state.ingest = ctx
            relay = asyncio.create_task(relay_forever(ctx), name="ingest-relay")
            try:
                yield state
            finally:
                await ctx.committer.aclose()
                relay.cancel()
                await asyncio.gather(relay, return_exceptions=True)
                await pool.close()

    app.router.lifespan_context = lifespan
    app.add_middleware(StreamedImports)
    # Innermost: inside the shared HTTP metrics middleware, so single events are still measured.
    app.user_middleware.append(Middleware(SingleEventFastPath))
    openapi.install(app)
    return app
