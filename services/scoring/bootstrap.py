from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.consumer import Subscription, one_by_one
from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import PROFILE_CHANGES
from services.scoring.adapters.tables import SCHEMA, messaging
from services.scoring.entrypoints.api import router
from services.scoring.handlers.rescore import handle_profile_updated

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain scoring",
    description="Value tier, lifecycle stage, churn risk and lifetime value for every customer.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    subscriptions=[
        Subscription(
            "profile-changes", (PROFILE_CHANGES,), one_by_one(handle_profile_updated), frozenset({"profile.updated"})
        )
    ],
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings)
