"""What every ingest route reaches through the request: the dependencies the app was built with."""

from __future__ import annotations

from fastapi import Request

from services.ingest.handlers.deps import IngestDeps


def deps_of(request: Request) -> IngestDeps:
    deps: IngestDeps = request.app.state.ingest
    return deps
