"""Campaign on a real PostgreSQL without the broker: handlers called with a real session and outbox.

A Kafka consumer-group join costs seconds, so most tests drive the use cases directly, exactly as
the consumer loop would (one transaction per event), and only the API tests start the whole app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from libs.common.consumer import HandlerContext
from libs.common.db import create_engine, session_factory
from libs.common.envelope import CloudEvent
from libs.common.migrations import migrate
from libs.common.outbox import Outbox
from retain_cli.embedded import free_port
from services.campaign.adapters.channels import Channels
from services.campaign.adapters.tables import actions, campaigns, messaging
from services.campaign.bootstrap import MIGRATIONS
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.events import CampaignHandlers
from services.campaign.handlers.scheduler import Scheduler
from services.campaign.handlers.sender import Sender
from services.campaign.settings import CampaignSettings, campaign_settings
from tests.conftest import Isolation
from tests.derived import NOON as NOON
from tests.derived import Clock as Clock
from tests.derived import derived_event

event = derived_event


@dataclass
class Harness:
    settings: CampaignSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    deps: CampaignDeps
    clock: Clock
    channels: Channels
    handlers: CampaignHandlers = field(init=False)

    def __post_init__(self) -> None:
        self.handlers = CampaignHandlers(self.deps)

    async def handle(self, handler: Callable[[HandlerContext, CloudEvent], Awaitable[None]], ev: CloudEvent) -> None:
        """One event in one transaction, as the consumer loop runs it."""
        async with self.sessions() as session, session.begin():
            await handler(HandlerContext(session, self.deps.outbox), ev)

    async def add_campaign(self, campaign_id: str, definition: dict[str, Any]) -> None:
        body = {"status": "active", **definition}
        async with self.sessions() as session, session.begin():
            await session.execute(
                campaigns.insert().values(id=campaign_id, name=body["name"], definition=body, status=body["status"])
            )

    async def set_builtin(self, active: bool) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                text("UPDATE campaign.campaigns SET status = :s WHERE builtin"), {"s": "active" if active else "paused"}
            )

    async def set_status(self, campaign_id: str, status: str) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE campaign.campaigns SET status = :s,"
                    " definition = jsonb_set(definition, '{status}', to_jsonb(CAST(:s AS text))) WHERE id = :id"
                ),
                {"s": status, "id": campaign_id},
            )

    async def actions(self, customer: str | None = None, campaign: str | None = None) -> list[Any]:
        query = select(actions).order_by(actions.c.id)
        if customer is not None:
            query = query.where(actions.c.customer_id == customer)
        if campaign is not None:
            query = query.where(actions.c.campaign_id == campaign)
        async with self.sessions() as session:
            return list((await session.execute(query)).all())

    async def outbox_types(self) -> list[str]:
        table = messaging.outbox
        async with self.sessions() as session:
            rows = (await session.execute(select(table.c.headers).order_by(table.c.id))).scalars()
            return [next(v for k, v in headers if k == "ce_type") for headers in rows]

    def sender(self) -> Sender:
        return Sender(self.deps, self.sessions, self.channels)

    def scheduler(self) -> Scheduler:
        return Scheduler(self.deps, self.sessions)


async def make_harness(isolated: Isolation, **overrides: Any) -> AsyncIterator[Harness]:
    settings = campaign_settings(isolated.settings("campaign"))
    settings = settings.model_copy(update={"send_backoff_s": 0.0, **overrides})
    await migrate(MIGRATIONS, settings.database_url, "campaign")
    engine = create_engine(settings)
    clock = Clock()
    deps = CampaignDeps(settings, Outbox(messaging, settings.topic_prefix), clock=clock)
    harness = Harness(settings, engine, session_factory(engine), deps, clock, Channels(settings))
    # The seeded welcome campaign would add coupons to every tier_up test; tests that want it re-activate it.
    await harness.set_builtin(False)
    try:
        yield harness
    finally:
        await engine.dispose()


# --- local servers standing in for the SMTP relay and the SMS / WeCom / alert gateways -------------


class MailSink:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(message_from_bytes(envelope.original_content or b"", policy=policy.default))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.sink = MailSink()
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class WebhookServer:
    """Records every POST; can fail the first N calls or hold each call for a while."""

    def __init__(self, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.calls: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._task: asyncio.Task[None] | None = None

    async def _hook(self, request: Request) -> JSONResponse:
        self.calls.append((dict(request.headers), await request.json()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if len(self.calls) <= self.fail_first:
            return JSONResponse({"error": "try later"}, status_code=503)
        return JSONResponse({"ok": True})

    async def __aenter__(self) -> WebhookServer:
        self._task = asyncio.create_task(self.server.serve())
        # uvicorn offers only a flag, no event, to say it is listening.
        while not self.server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
