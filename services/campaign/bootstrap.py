"""Wiring of the campaign service: consumers, sender and scheduler loops, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.aliases import JOIN_EVENT_TYPES
from libs.common.consumer import Subscription
from libs.common.outbox import Outbox
from libs.common.runtime import Runtime, ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS, FEEDBACK_EVENTS, INSIGHTS_EVENTS, PROFILE_CHANGES, SCORE_CHANGES
from services.campaign.adapters.channels import Channels
from services.campaign.adapters.tables import SCHEMA, messaging
from services.campaign.entrypoints import outcomes
from services.campaign.entrypoints.api import router
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.events import SEGMENT_EVENT_TYPES, CampaignHandlers
from services.campaign.handlers.gauges import refresh_action_gauges
from services.campaign.handlers.kpi_alerts import kpi_alert_subscription
from services.campaign.handlers.scheduler import Scheduler
from services.campaign.handlers.sender import Sender
from services.campaign.settings import campaign_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def subscriptions(handlers: CampaignHandlers) -> list[Subscription]:
    return [
        Subscription(
            "score-changes",
            (SCORE_CHANGES,),
            handlers.handle_score_changes,
            frozenset({"threshold.crossed", "score.changed"}),
        ),
        Subscription(
            "profile-changes",
            (PROFILE_CHANGES,),
            handlers.handle_profile_changes,
            frozenset({"profile.updated", "customer.erased"}) | JOIN_EVENT_TYPES,
        ),
        Subscription("feedback-events", (FEEDBACK_EVENTS,), handlers.handle_feedback, frozenset({"feedback.received"})),
        Subscription(
            "customer-events",
            (CUSTOMER_EVENTS,),
            handlers.handle_customer_events,
            frozenset({"purchase", "refund", "consent.changed", "login"}),
        ),
        # Behavioural clusters published by insights as segments, usable in audiences like profile's.
        Subscription("insights-segments", (INSIGHTS_EVENTS,), handlers.handle_segment_changes, SEGMENT_EVENT_TYPES),
    ]


def definition(deps: CampaignDeps, channels: Channels) -> ServiceDefinition:
    handlers = CampaignHandlers(deps)

    async def sender(runtime: Runtime) -> None:
        await Sender(deps, runtime.sessions, channels).run()

    async def scheduler(runtime: Runtime) -> None:
        await Scheduler(deps, runtime.sessions).run()

    return ServiceDefinition(
        name=SCHEMA,
        title="Retain campaign",
        description="Triggered coupons, alerts and messages, each sent exactly once.",
        migrations_dir=MIGRATIONS,
        tables=messaging,
        subscriptions=[*subscriptions(handlers), kpi_alert_subscription(deps)],
        routers=[router, outcomes.router],
        background=[sender, scheduler],
        gauges=[refresh_action_gauges],
    )


def create_app(settings: Settings | None = None, *, channels: Channels | None = None) -> FastAPI:
    settings = campaign_settings(settings)
    deps = CampaignDeps(settings, Outbox(messaging, settings.topic_prefix))
    app = create_service_app(definition(deps, channels or Channels(settings)), settings)
    app.state.campaign = deps
    return app
