"""Wiring of the feedback service: consumers, the SLA checker, HTTP routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from libs.common.consumer import HandlerContext, Subscription, one_by_one
from libs.common.contracts import types_on
from libs.common.envelope import CloudEvent
from libs.common.outbox import Outbox
from libs.common.runtime import Runtime, ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS, PROFILE_CHANGES, SCORE_CHANGES
from services.feedback.adapters.tables import SCHEMA, messaging
from services.feedback.entrypoints.api import routers
from services.feedback.entrypoints.common import install_error_handlers
from services.feedback.handlers import customers, sla
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.gauges import refresh_breach_gauges
from services.feedback.handlers.surveys import survey_response_handler
from services.feedback.handlers.tickets import TICKET_EVENTS, ticket_handler
from services.feedback.settings import feedback_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def subscriptions(deps: FeedbackDeps) -> list[Subscription]:
    on_ticket = ticket_handler(deps)
    on_survey = survey_response_handler(deps)

    async def on_customer_event(ctx: HandlerContext, event: CloudEvent) -> None:
        if event.type == "survey.response":
            await on_survey(ctx, event)
        else:
            await on_ticket(ctx, event)

    return [
        Subscription(
            "customer-events",
            (CUSTOMER_EVENTS,),
            one_by_one(on_customer_event),
            TICKET_EVENTS | {"survey.response"},
        ),
        Subscription(
            "score-changes",
            (SCORE_CHANGES,),
            customers.on_score_changes,
            types_on(SCORE_CHANGES),
        ),
        Subscription(
            "profile-changes",
            (PROFILE_CHANGES,),
            customers.on_profile_changes,
            types_on(PROFILE_CHANGES),
        ),
    ]


def definition(deps: FeedbackDeps) -> ServiceDefinition:
    async def sla_checker(runtime: Runtime) -> None:
        await sla.run_checker(deps, runtime.sessions, runtime.outbox)

    return ServiceDefinition(
        name=SCHEMA,
        title="Retain feedback",
        description="Surveys, complaints and service SLAs that feed back into retention.",
        migrations_dir=MIGRATIONS,
        tables=messaging,
        subscriptions=subscriptions(deps),
        routers=routers,
        background=[sla_checker],
        gauges=[refresh_breach_gauges],
        openapi_tags=[
            {"name": "tickets", "description": "Tickets and complaints, their timeline and SLA clocks."},
            {"name": "agents", "description": "Support agents and their skills, for routing."},
            {"name": "surveys", "description": "Survey definitions, signed links and responses."},
            {"name": "analysis", "description": "NPS, CSAT, complaint categories and themes."},
            {"name": "contacts", "description": "Outreach to customers by account managers and retention teams."},
        ],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = feedback_settings(settings)
    deps = FeedbackDeps(settings, Outbox(messaging, settings.topic_prefix))
    app = create_service_app(definition(deps), settings)
    app.state.feedback = deps
    install_error_handlers(app)
    shared_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with shared_lifespan(app) as state:
            # The runtime's key client: one cache for opening events and for the texts sealed at rest.
            deps.personal = app.state.runtime.personal
            yield state

    app.router.lifespan_context = lifespan
    return app
