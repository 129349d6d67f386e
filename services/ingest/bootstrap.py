"""Wiring of ingest: the shared runtime plus ingest's own pool, circuit, relay and OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware

from libs.common.consumer import Subscription
from libs.common.erasures import ERASED_EVENT_TYPE
from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import PROFILE_CHANGES
from services.ingest.adapters.event_log import create_pool
from services.ingest.adapters.tables import SCHEMA, messaging
from services.ingest.domain.circuit import Circuit
from services.ingest.entrypoints import api, export, imports, keys, openapi, preferences
from services.ingest.entrypoints.fast import SingleEventFastPath
from services.ingest.handlers.deps import IngestDeps
from services.ingest.handlers.erasure import on_customer_erased, scrub_forever
from services.ingest.handlers.group_commit import GroupCommitter
from services.ingest.handlers.relay import redeliver, relay_forever
from services.ingest.handlers.sealing import Sealer
from services.ingest.settings import ingest_settings

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain ingest",
    description="The front door: upstream shops and ERPs post events; validated, deduplicated, published.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    routers=[api.router, imports.router, preferences.router, keys.router, export.router],
    # Erasure reaches the event log: the customer's past events are deleted and re-posts of them refused.
    subscriptions=[
        Subscription("profile-changes", (PROFILE_CHANGES,), on_customer_erased, frozenset({ERASED_EVENT_TYPE}))
    ],
    background=[scrub_forever],
    ready_without_broker=True,
    uses_shared_outbox=False,
    # Its event log is its outbox, and keeps every event (the replay source).
    redeliver=redeliver,
    streamed_paths=frozenset({imports.IMPORTS_PATH}),
)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = create_service_app(DEFINITION, ingest_settings(settings))
    shared_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with shared_lifespan(app) as state:
            runtime = app.state.runtime
            pool = await create_pool(runtime.settings.database_url, runtime.settings.database_pool_size)
            ctx = IngestDeps(
                runtime=runtime,
                settings=runtime.settings,
                pool=pool,
                circuit=Circuit(open_for_s=runtime.settings.ingest_circuit_open_s),
                sealer=Sealer.from_settings(runtime.settings),
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
    # Innermost: inside the shared HTTP metrics middleware, so single events are still measured.
    app.user_middleware.append(Middleware(SingleEventFastPath))
    openapi.install(app)
    return app
