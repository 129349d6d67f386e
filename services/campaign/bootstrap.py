from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.consumer import Subscription, one_by_one
from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import SCORE_CHANGES
from services.campaign.adapters.tables import SCHEMA, messaging
from services.campaign.entrypoints.api import router
from services.campaign.handlers.top_tier_coupon import handle_threshold_crossed

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain campaign",
    description="Triggered coupons, alerts and messages, each sent exactly once.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    subscriptions=[
        Subscription(
            "score-changes", (SCORE_CHANGES,), one_by_one(handle_threshold_crossed), frozenset({"threshold.crossed"})
        )
    ],
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings)
