from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.consumer import Subscription, one_by_one
from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from libs.common.topics import CUSTOMER_EVENTS
from services.feedback.adapters.tables import SCHEMA, messaging
from services.feedback.entrypoints.api import router
from services.feedback.handlers.tickets import handle_ticket_opened

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain feedback",
    description="Surveys, complaints and service SLAs that feed back into retention.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    subscriptions=[
        Subscription(
            "customer-events", (CUSTOMER_EVENTS,), one_by_one(handle_ticket_opened), frozenset({"ticket.opened"})
        )
    ],
    routers=[router],
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings)
