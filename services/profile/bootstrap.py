from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.consumer import Subscription
from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS
from services.profile.adapters.tables import SCHEMA, messaging
from services.profile.entrypoints.api import router
from services.profile.handlers.apply_events import handle_customer_events

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain profile",
    description="A 360-degree view of every customer, kept current from the event stream.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    subscriptions=[Subscription("customer-events", (CUSTOMER_EVENTS,), handle_customer_events)],
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings)
