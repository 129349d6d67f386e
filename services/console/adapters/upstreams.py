"""The services' HTTP APIs, called with the signed-in user's own API key: each service enforces that key's scopes.

A service that does not answer (down, not deployed yet, timing out) is an answer too: pages render what they have.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)
Service = Literal["profile", "scoring", "campaign", "feedback", "insights"]
SERVICES: tuple[Service, ...] = ("profile", "scoring", "campaign", "feedback", "insights")


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: the service did not answer
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def denied(self) -> bool:
        return self.status in (401, 403)

    @property
    def unavailable(self) -> bool:
        return self.status is None or self.status >= 500

    def json(self) -> dict[str, Any]:
        return self.body if self.ok and isinstance(self.body, dict) else {}


class Upstreams:
    def __init__(
        self, settings: ConsoleSettings, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
    ) -> None:
        urls: dict[Service, str] = {
            "profile": settings.console_profile_url,
            "scoring": settings.console_scoring_url,
            "campaign": settings.console_campaign_url,
            "feedback": settings.console_feedback_url,
            "insights": settings.console_insights_url,
        }
        transports = transports or {}
        self.clients = {
            name: httpx.AsyncClient(
                base_url=url, timeout=settings.console_upstream_timeout_s, transport=transports.get(name)
            )
            for name, url in urls.items()
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def get(self, service: Service, path: str, key: str, params: Mapping[str, Any] | None = None) -> Reply:
        return await self._call(service, "GET", path, key, params=params)

    async def post(self, service: Service, path: str, key: str, body: Mapping[str, Any]) -> Reply:
        return await self._call(service, "POST", path, key, json=body)

    async def _call(self, service: Service, method: str, path: str, key: str, **options: Any) -> Reply:
        try:
            response = await self.clients[service].request(
                method, path, headers={"Authorization": f"Bearer {key}"}, **options
            )
        except httpx.HTTPError as exc:
            log.warning("upstream did not answer", extra={"service": service, "path": path, "error": repr(exc)})
            return Reply(None)
        try:
            body = response.json()
        except ValueError:
            body = None
        return Reply(response.status_code, body)

    async def ready(self, service: Service) -> bool:
        try:
            return (await self.clients[service].get("/healthz")).status_code == 200
        except httpx.HTTPError:
            return False
