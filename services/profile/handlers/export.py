"""The data subject's export: everything every service holds about a customer, as one document.

Profile gathers it because it knows every id the person is known under (merges); each service's part comes over
its own API, for each of those ids, so nothing reads another service's schema.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.profile.adapters import profiles
from services.profile.adapters.peers import EXPORT_SOURCES, Peers
from services.profile.handlers.sealing import Vault


async def export_customer(
    session: AsyncSession, vault: Vault, peers: Peers, customer_id: str, authorization: str
) -> dict[str, Any] | None:
    """None when profile knows no such customer."""
    survivor = (await profiles.survivors_of(session, [customer_id])).get(customer_id, customer_id)
    state, timeline, segments = await profiles.export_of(session, survivor)
    if state is None:
        return None
    ids = [survivor, *sorted(await profiles.merged_into(session, survivor))]
    calls = [
        (section, service, known, peers.fetch(service, path.format(id=known), authorization))
        for known in ids
        for section, service, path in EXPORT_SOURCES
    ]
    answers = await asyncio.gather(*(call for *_, call in calls))
    services: dict[str, dict[str, Any]] = {}
    incomplete: set[str] = set()
    for (section, service, known, _), answer in zip(calls, answers, strict=True):
        status = answer["status"]
        if status is None or status >= 500 or status in (401, 403):
            incomplete.add(service)
        services.setdefault(service, {}).setdefault(section, {})[known] = answer
    return {
        "customer_id": survivor,
        "requested_id": customer_id,
        "known_ids": ids,
        "exported_at": datetime.now(UTC).isoformat(),
        "complete": not incomplete,
        "unavailable": sorted(incomplete),
        "services": {
            "profile": {"profile": await vault.open_text(survivor, state), "timeline": timeline, "segments": segments},
            **services,
        },
    }
