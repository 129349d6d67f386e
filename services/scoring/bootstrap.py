from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from libs.common.clock import wall_clock
from libs.common.consumer import Subscription
from libs.common.runtime import Runtime, ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS, FEEDBACK_EVENTS, PROFILE_CHANGES
from services.scoring.adapters.tables import SCHEMA, messaging
from services.scoring.entrypoints.api import router
from services.scoring.handlers.deps import ScoringDeps
from services.scoring.handlers.due import due_periodically
from services.scoring.handlers.gauges import refresh_grade_gauges
from services.scoring.handlers.refit import refit_periodically
from services.scoring.handlers.rescore import (
    FEEDBACK_EVENT_TYPES,
    PROFILE_EVENT_TYPES,
    PURCHASE_EVENT_TYPES,
    ScoringConsumers,
)
from services.scoring.settings import scoring_settings


def definition(deps: ScoringDeps) -> ServiceDefinition:
    consumers = ScoringConsumers(deps)

    async def scheduled_refit(runtime: Runtime) -> None:
        await refit_periodically(deps, runtime.sessions, runtime.outbox)

    async def due_transitions(runtime: Runtime) -> None:
        await due_periodically(deps, runtime.sessions, runtime.outbox)

    return ServiceDefinition(
        name=SCHEMA,
        title="Retain scoring",
        description="Value tier, lifecycle stage, churn risk and lifetime value for every customer.",
        migrations_dir=Path(__file__).parent / "migrations",
        tables=messaging,
        subscriptions=[
            Subscription(
                "profile-changes",
                (PROFILE_CHANGES,),
                consumers.handle_profile_changes,
                PROFILE_EVENT_TYPES,
                personal_data=False,
            ),
            Subscription("feedback-events", (FEEDBACK_EVENTS,), consumers.handle_feedback, FEEDBACK_EVENT_TYPES),
            # purchases straight from upstream, kept per order id: the BTYD summaries need purchase days
            Subscription("purchases", (CUSTOMER_EVENTS,), consumers.handle_purchases, PURCHASE_EVENT_TYPES),
        ],
        routers=[router],
        background=[scheduled_refit, due_transitions],
        gauges=[refresh_grade_gauges],
    )


def create_app(settings: Settings | None = None, clock: Callable[[], datetime] = wall_clock) -> FastAPI:
    """``clock`` is the live clock of the consumers and the due-time scheduler (tests inject theirs)."""
    scoring = scoring_settings(settings)
    deps = ScoringDeps(scoring, clock)
    app = create_service_app(definition(deps), scoring)
    app.state.scoring = deps
    return app
