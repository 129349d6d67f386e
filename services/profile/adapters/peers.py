"""The other services' HTTP APIs, for the data subject's export: each answers with what it holds of a customer.

Called with the requester's own API key (the export requires admin, which every service accepts), so each service
checks access itself. A service that does not answer is named in the export instead of failing it.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)

# (section, service, path template): what each service holds of a customer.
EXPORT_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("events", "ingest", "/v1/customers/{id}/events"),
    ("score", "scoring", "/v1/customers/{id}/score"),
    ("score_history", "scoring", "/v1/customers/{id}/score/history?limit=500"),
    ("actions", "campaign", "/v1/customers/{id}/actions"),
    ("loyalty", "campaign", "/v1/customers/{id}/loyalty"),
    ("tickets", "feedback", "/v1/tickets?customer_id={id}&limit=500"),
    ("contacts", "feedback", "/v1/customers/{id}/contacts"),
)


class Peers:
    def __init__(
        self, urls: dict[str, str], timeout_s: float, transports: dict[str, httpx.AsyncBaseTransport] | None = None
    ) -> None:
        transports = transports or {}
        self.clients = {
            name: httpx.AsyncClient(base_url=url, timeout=timeout_s, transport=transports.get(name))
            for name, url in urls.items()
        }

    async def fetch(self, service: str, path: str, authorization: str) -> dict[str, Any]:
        """The service's answer as {"status", "body"}; status None when it did not answer."""
        try:
            response = await self.clients[service].get(path, headers={"Authorization": authorization})
        except httpx.HTTPError as exc:
            log.warning("export: a service did not answer", extra={"service": service, "error": repr(exc)})
            return {"status": None, "body": None}
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return {"status": response.status_code, "body": body}

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
