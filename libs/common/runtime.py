"""Bootstrap: wires settings, database, broker, consumers, outbox relay and the HTTP app of one service."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from libs.common import metrics
from libs.common.apikeys import KeyStore
from libs.common.auth import RateLimiter
from libs.common.broker_memory import broker_remembers, remember
from libs.common.consumer import ConsumerLoop, Subscription
from libs.common.db import MessagingTables, create_engine, session_factory
from libs.common.kafka import Publisher, ensure_topics, ping
from libs.common.logs import configure_logging
from libs.common.migrations import migrate
from libs.common.outbox import Outbox, OutboxRelay
from libs.common.personal import PersonalData
from libs.common.problems import install_problem_handlers, invalid_request, nul_in_url, problem_response
from libs.common.settings import Settings

log = logging.getLogger(__name__)

BackgroundTask = Callable[["Runtime"], Awaitable[None]]
# Re-queues what a service published within its redelivery window; returns how many events.
Redelivery = Callable[["Runtime"], Awaitable[int]]
# Sets gauges counted from the service's own tables (libs.common.metrics.Snapshot) in one read-only session.
GaugeRefresh = Callable[[AsyncSession], Awaitable[None]]
# A count that has not answered by then is skipped: the scrape reports the previous figures.
GAUGE_REFRESH_TIMEOUT_S = 5.0


# Services keep many long-lived objects (the profile cache holds tens of thousands of parsed documents) and
# allocate heavily per event. CPython counts a collection from net allocations, and what a consumer batch allocates
# mostly dies with the batch: with a low young-generation threshold the collector ran mid-batch and re-scanned the
# whole batch's live objects dozens of times (64 young collections per 100k profile events at 50k, 7 at 300k, where
# a replica's throughput rose by a third). Freezing what start-up created keeps those out of every collection.
YOUNG_GC_THRESHOLD = 300_000
OLDER_GC_THRESHOLDS = (10, 100)


def tune_garbage_collector(young_threshold: int = YOUNG_GC_THRESHOLD) -> None:
    thresholds = (young_threshold, *OLDER_GC_THRESHOLDS)
    if gc.get_threshold() != thresholds:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*thresholds)


@dataclass
class ServiceDefinition:
    """What one service contributes; everything else is the same for all five."""

    name: str
    title: str
    migrations_dir: Path
    tables: MessagingTables
    subscriptions: Sequence[Subscription] = ()
    routers: Sequence[APIRouter] = ()
    # Long-running loops (schedulers, relays of the service's own) started once the broker is up.
    background: Sequence[BackgroundTask] = ()
    # Ingest keeps accepting into its outbox while the broker is down; the others are not ready then.
    ready_without_broker: bool = False
    # False for a service that never writes the shared outbox (ingest: its event log is its outbox),
    # so no relay polls an always-empty table.
    uses_shared_outbox: bool = True
    # Routes that stream their body and enforce their own limits (bulk imports of any size).
    streamed_paths: frozenset[str] = frozenset()
    description: str = ""
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    # Net allocations that trigger a young-generation collection (see YOUNG_GC_THRESHOLD).
    young_gc_threshold: int = YOUNG_GC_THRESHOLD
    # What the service re-sends to a broker that lost it; None: its shared outbox's published rows.
    redeliver: Redelivery | None = None
    # Gauges of the service's state, recounted when a scrape finds them older than
    # `metrics_refresh_min_interval_s`.
    gauges: Sequence[GaugeRefresh] = ()


class Runtime:
    def __init__(self, definition: ServiceDefinition, settings: Settings) -> None:
        self.definition = definition
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings)
        self.sessions: async_sessionmaker[AsyncSession] = session_factory(self.engine)
        self.publisher = Publisher(settings)
        self.keys = KeyStore(self.sessions, settings.api_key_cache_ttl_s)
        self.outbox = Outbox(definition.tables, settings.topic_prefix)
        # Opens sealed personal data before handlers see it; None without a master key (nothing is sealed then).
        self.personal = PersonalData.from_settings(settings)
        self.consumers = [
            ConsumerLoop(sub, settings, self.sessions, definition.tables, self.publisher, self.outbox, self.personal)
            for sub in definition.subscriptions
        ]
        self.relay = OutboxRelay(
            definition.tables,
            self.sessions,
            self.publisher,
            service=settings.service,
            poll_interval_s=settings.outbox_poll_interval_s,
            batch_size=settings.outbox_batch_size,
            redelivery_window_s=settings.redelivery_window_s,
        )
        self.broker_connected = asyncio.Event()
        self._recovery = asyncio.Lock()
        self._gauges_lock = asyncio.Lock()
        self._gauges_at = float("-inf")
        # Consumers and the relay stop at a batch boundary when asked; background tasks are cancelled.
        self._graceful: list[asyncio.Task[None]] = []
        self._cancellable: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        tune_garbage_collector(self.definition.young_gc_threshold)
        if self.settings.migrate_on_start:
            await migrate(self.definition.migrations_dir, self.settings.database_url, self.definition.name)
        self._spawn(self._connect_broker(), "connect-broker", graceful=False)

    async def _connect_broker(self) -> None:
        delay = 0.5
        while True:
            try:
                await ensure_topics(self.settings)
                await self.publisher.start()
                break
            except Exception as exc:
                log.warning("broker not reachable yet", extra={"error": repr(exc), "retry_in_s": delay})
                await self.publisher.stop()
                self.publisher = Publisher(self.settings)
                self._rebind_publisher()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        await self.redeliver_if_forgotten(retry=True)
        self.broker_connected.set()
        self._spawn(self._watch_broker(), "broker-watch", graceful=False)
        if self.definition.uses_shared_outbox:
            self._spawn(self.relay.run(), "outbox-relay")
        for loop in self.consumers:
            self._spawn(loop.run(), f"consumer-{loop.consumer_name}")
        for task in self.definition.background:
            self._spawn(task(self), getattr(task, "__name__", "background"), graceful=False)

    async def redeliver_if_forgotten(self, *, retry: bool = False) -> bool:
        """Re-sends what this service published within its window when the broker does not know the service.

        One check at a time in a process: the watch and a relay noticing the same restart re-send once. Without
        `retry` a broker that cannot be asked raises.
        """
        async with self._recovery:
            while True:
                try:
                    remembered = await broker_remembers(self.settings)
                    break
                except Exception as exc:
                    if not retry:
                        raise
                    log.warning("cannot ask the broker what it remembers; retrying", extra={"error": repr(exc)})
                    await asyncio.sleep(1.0)
            if remembered:
                return False
            count = await self.redeliver()
            log.warning(
                "the broker does not know this service (new or restarted): re-sending what it published",
                extra={"count": count, "window_s": self.settings.redelivery_window_s},
            )
            metrics.REDELIVERED.labels(self.settings.service).inc(count)
            await remember(self.settings)
        if self.broker_connected.is_set():
            # Consumers already running on the old broker stall: each gets a fresh client.
            for loop in self.consumers:
                loop.restart()
        return True

    async def redeliver(self) -> int:
        if self.definition.redeliver is not None:
            return await self.definition.redeliver(self)
        if self.definition.uses_shared_outbox:
            return await self.relay.redeliver()
        return 0

    async def _watch_broker(self) -> None:
        """A broker restarted under running clients loses topics, groups and messages, and consumers stall: recreate
        the topics, re-send, and give every consumer a fresh client."""
        while True:
            await asyncio.sleep(self.settings.broker_watch_interval_s)
            try:
                remembered = await broker_remembers(self.settings)
            except Exception:
                continue  # down: nothing to decide until it answers
            if remembered:
                continue
            log.warning("the broker restarted and lost its data: recovering")
            try:
                await ensure_topics(self.settings)
                await self.redeliver_if_forgotten()
            except Exception:
                log.warning("recovery from a broker restart failed; retrying", exc_info=True)

    def _rebind_publisher(self) -> None:
        self.relay.publisher = self.publisher
        for loop in self.consumers:
            loop.publisher = self.publisher

    def _spawn(self, coro: Awaitable[None], name: str, *, graceful: bool = True) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                # A dead consumer would silently stop the service: crash the process so it gets restarted.
                log.critical("background task %s died; exiting", name, exc_info=True)
                import os
                import signal

                os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(guarded(), name=name)
        (self._graceful if graceful else self._cancellable).append(task)

    async def stop(self) -> None:
        for loop in self.consumers:
            loop.stop()
        self.relay.stop()
        for task in self._cancellable:
            task.cancel()
        pending: set[asyncio.Task[None]] = set()
        if self._graceful:
            _, pending = await asyncio.wait(self._graceful, timeout=15)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._cancellable, *pending, return_exceptions=True)
        await self.publisher.stop()
        if self.personal is not None:
            await self.personal.keys.aclose()
        await self.engine.dispose()

    async def database_ok(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await asyncio.wait_for(connection.execute(text("SELECT 1")), 2)
            return True
        except Exception:
            return False

    async def refresh_gauges(self) -> None:
        """Recounts the state gauges unless a recent scrape did; a failure leaves the previous figures."""
        if not self.definition.gauges:
            return
        async with self._gauges_lock:
            if time.monotonic() - self._gauges_at < self.settings.metrics_refresh_min_interval_s:
                return
            try:
                async with self.sessions() as session:
                    for refresh in self.definition.gauges:
                        await asyncio.wait_for(refresh(session), GAUGE_REFRESH_TIMEOUT_S)
            except Exception:
                log.warning("counting the state gauges failed; the scrape reports the previous figures", exc_info=True)
            self._gauges_at = time.monotonic()

    def consumers_joined(self) -> bool:
        """Every consumer is a member of its group with its partitions (possibly none) assigned."""
        return all(loop.joined.is_set() for loop in self.consumers)

    async def readiness(self) -> tuple[bool, dict[str, str]]:
        database, broker = await asyncio.gather(self.database_ok(), ping(self.publisher))
        metrics.DEPENDENCY_UP.labels(self.settings.service, "database").set(int(database))
        metrics.DEPENDENCY_UP.labels(self.settings.service, "broker").set(int(broker))
        checks = {"database": "ok" if database else "unreachable", "broker": "ok" if broker else "unreachable"}
        joined = self.consumers_joined()
        if self.consumers:
            # Before the join an event posted now would wait seconds for its consumer: not ready yet.
            checks["consumers"] = "ok" if joined else "joining"
        if database and broker and joined:
            return True, {"status": "ready", **checks}
        if database and self.definition.ready_without_broker:
            return True, {"status": "degraded", **checks}
        return False, {"status": "not_ready", **checks}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request; routes open their own transaction."""
    async with runtime_of(request).sessions() as session:
        yield session


class HttpMetricsMiddleware:
    """Latency per route, and the checks every request passes before routing: body size, no NUL in the URL.

    Pure ASGI (no BaseHTTPMiddleware) so it adds microseconds, not milliseconds, per request.
    """

    def __init__(self, app: ASGIApp, service: str, max_body_bytes: int, streamed_paths: frozenset[str]) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.streamed_paths = streamed_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if (
            length is not None
            and length.isdigit()
            and int(length) > self.max_body_bytes
            and scope["path"] not in self.streamed_paths
        ):
            response = problem_response(
                413, "Payload Too Large", f"body exceeds {self.max_body_bytes} bytes", instance=scope["path"]
            )
            await response(scope, receive, send)
            return
        errors = nul_in_url(scope["path"], scope["query_string"])
        if errors:
            await invalid_request(errors, instance=scope["path"])(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            metrics.HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(
                time.perf_counter() - started
            )


def create_app(definition: ServiceDefinition, settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings(service=definition.name)
    if settings.service == "retain":
        settings = settings.model_copy(update={"service": definition.name})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service, settings.log_level)
        runtime = Runtime(definition, settings)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            metrics.worker_exited()

    app = FastAPI(
        title=definition.title,
        description=definition.description,
        version="1.0.0",
        lifespan=lifespan,
        openapi_tags=definition.openapi_tags or None,
    )
    app.state.settings = settings
    app.state.definition = definition
    app.state.rate_limiter = RateLimiter(settings.http_workers)
    install_problem_handlers(app)
    app.add_middleware(
        HttpMetricsMiddleware,
        service=settings.service,
        max_body_bytes=settings.max_body_bytes,
        streamed_paths=definition.streamed_paths,
    )

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", tags=["operations"], summary="Database and broker reachable, consumers in their groups")
    async def readyz(request: Request) -> JSONResponse:
        ready, body = await runtime_of(request).readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        # A scrape reports the dependencies as they are now, not as the last readiness probe found them.
        runtime = runtime_of(request)
        await asyncio.gather(runtime.readiness(), runtime.refresh_gauges())
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    for router in definition.routers:
        app.include_router(router)
    # Every service answers the key and audit administration, so that no one service is needed for it.
    from libs.common.admin_api import router as admin_router

    app.include_router(admin_router)
    return app
