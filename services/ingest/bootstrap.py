from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.runtime import ServiceDefinition
from libs.common.runtime import create_app as create_service_app
from libs.common.settings import Settings
from services.ingest.adapters.tables import SCHEMA, messaging
from services.ingest.entrypoints.api import router
from services.ingest.handlers.relay import ingest_relay

DEFINITION = ServiceDefinition(
    name=SCHEMA,
    title="Retain ingest",
    description="The front door: upstream shops and ERPs post events; validated, deduplicated, published.",
    migrations_dir=Path(__file__).parent / "migrations",
    tables=messaging,
    routers=[router],
    background=[ingest_relay],
    ready_without_broker=True,
)


def create_app(settings: Settings | None = None) -> FastAPI:
    return create_service_app(DEFINITION, settings)
