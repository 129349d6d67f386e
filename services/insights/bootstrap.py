"""Wiring of insights: four consumers counting into its own tables, the refresh loop, the KPI API."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.consumer import Subscription
from libs.common.runtime import Runtime, ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS, FEEDBACK_EVENTS, PROFILE_CHANGES, SCORE_CHANGES
from services.insights.adapters.tables import SCHEMA, messaging
from services.insights.entrypoints.api import router
from services.insights.handlers import consume
from services.insights.handlers.clusters import Clusters
from services.insights.handlers.figures import Figures
from services.insights.settings import InsightsSettings, insights_settings

SUBSCRIPTIONS = [
    Subscription("customer-events", (CUSTOMER_EVENTS,), consume.on_purchases, consume.ORDER_TYPES, personal_data=False),
    Subscription("score-changes", (SCORE_CHANGES,), consume.on_scores, consume.SCORE_TYPES),
    Subscription("feedback-events", (FEEDBACK_EVENTS,), consume.on_feedback, consume.FEEDBACK_TYPES),
    Subscription(
        "profile-changes", (PROFILE_CHANGES,), consume.on_profile_changes, consume.PROFILE_TYPES, personal_data=False
    ),
]


def definition(settings: InsightsSettings) -> ServiceDefinition:
    async def refresh(runtime: Runtime) -> None:
        await Figures(settings, runtime.sessions, runtime.outbox).run()

    async def clusters(runtime: Runtime) -> None:
        await Clusters(settings, runtime.sessions, runtime.outbox).run()

    return ServiceDefinition(
        name=SCHEMA,
        title="Retain insights",
        description="Retention KPIs per period, cohorts and KPI anomalies, counted from the event stream.",
        migrations_dir=Path(__file__).parent / "migrations",
        tables=messaging,
        subscriptions=SUBSCRIPTIONS,
        routers=[router],
        background=[refresh, clusters],
        openapi_tags=[{"name": "kpis", "description": "Period KPIs, cohorts and anomalies."}],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    config = insights_settings(settings)
    return create_service_app(definition(config), config)
