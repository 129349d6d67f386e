"""What each console page shows, gathered from the services' APIs concurrently; no state of the console's own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from services.console.adapters.upstreams import Reply, Upstreams
from services.console.domain import worklist as worklist_rules
from services.console.domain.sla import ORDER, by_state

SEARCH_FIELDS = ("id", "email", "phone", "tag")
# What routes hand to these use cases: the clients of the services' APIs, made at start-up.
Services = Upstreams


def _id(customer_id: str) -> str:
    return quote(customer_id, safe="")


@dataclass
class Section:
    """One service's part of a page: its data, or why it is missing."""

    reply: Reply

    @property
    def data(self) -> dict[str, Any]:
        return self.reply.json()

    @property
    def state(self) -> str:
        if self.reply.ok:
            return "ok"
        if self.reply.denied:
            return "denied"
        if self.reply.status == 404:
            return "none"
        return "unavailable"


async def search(up: Upstreams, key: str, by: str, query: str) -> Section:
    if by == "id":
        reply = await up.get("profile", f"/v1/customers/{_id(query)}", key)
        if reply.ok:
            found = reply.json()
            summary = {
                "customer_id": found["customer_id"],
                "name": found.get("attributes", {}).get("name"),
                "email": found.get("identities", {}).get("email"),
                "phone": found.get("identities", {}).get("phone"),
                "tags": found.get("tags", []),
                "order_count": found.get("orders", {}).get("count", 0),
                "total_spend": found.get("orders", {}).get("total_spend", 0),
                "last_seen": found.get("last_seen"),
            }
            return Section(Reply(200, {"items": [summary]}))
        return Section(Reply(200, {"items": []}) if reply.status == 404 else reply)
    return Section(await up.get("profile", "/v1/customers", key, params={by: query, "limit": 50}))


@dataclass
class Customer360:
    customer_id: str
    profile: Section
    score: Section
    actions: Section
    loyalty: Section
    tickets: Section
    contacts: Section
    timeline: Section
    history: Section


# Score changes shown in the 360° view: newest first in the table, oldest first in the chart.
HISTORY_LIMIT = 50


async def customer_360(up: Upstreams, key: str, customer_id: str) -> Customer360:
    path = f"/v1/customers/{_id(customer_id)}"
    replies = await asyncio.gather(
        up.get("profile", path, key),
        up.get("scoring", f"{path}/score", key),
        up.get("campaign", f"{path}/actions", key),
        up.get("campaign", f"{path}/loyalty", key),
        up.get("feedback", "/v1/tickets", key, params={"customer_id": customer_id, "limit": 20}),
        up.get("feedback", f"{path}/contacts", key, params={"limit": 10}),
        up.get("profile", f"{path}/timeline", key, params={"limit": 30}),
        up.get("scoring", f"{path}/score/history", key, params={"limit": HISTORY_LIMIT}),
    )
    return Customer360(customer_id, *(Section(reply) for reply in replies))


@dataclass
class Worklist:
    level: float
    items: list[worklist_rules.WorkItem] = field(default_factory=list)
    scores: Section | None = None
    candidates: int = 0


async def _scores_at_risk(up: Upstreams, key: str, level: float, limit: int) -> tuple[Reply, list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    reply = Reply(None)
    while len(found) < limit:
        params: dict[str, Any] = {"min_risk": level, "limit": min(500, limit - len(found))}
        if cursor:
            params["cursor"] = cursor
        reply = await up.get("scoring", "/v1/scores", key, params=params)
        if not reply.ok:
            break
        page = reply.json()
        found += page.get("items", [])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return reply, found


async def worklist(up: Upstreams, key: str, level: float, size: int, candidates: int) -> Worklist:
    reply, scores = await _scores_at_risk(up, key, level, candidates)
    result = Worklist(level=level, scores=Section(reply if not scores else Reply(200, {})), candidates=len(scores))
    items = worklist_rules.rank(scores, level, size)

    async def enrich(item: worklist_rules.WorkItem) -> worklist_rules.WorkItem:
        path = f"/v1/customers/{_id(item.customer_id)}"
        timeline, contacts = await asyncio.gather(
            up.get("profile", f"{path}/timeline", key, params={"limit": 50}),
            up.get("feedback", f"{path}/contacts", key, params={"limit": 3}),
        )
        contact_items = contacts.json().get("items", [])
        interactions = worklist_rules.last_interactions(timeline.json().get("items", []), contact_items)
        return worklist_rules.WorkItem(
            **{
                **item.__dict__,
                "interactions": interactions,
                "suggestion": worklist_rules.suggestion(item),
                "last_contact_at": contact_items[0]["contacted_at"] if contact_items else None,
            }
        )

    result.items = list(await asyncio.gather(*(enrich(item) for item in items)))
    return result


async def mark_contacted(
    up: Upstreams, key: str, customer_id: str, *, by: str, outcome: str, channel: str, note: str, submission: str
) -> Reply:
    body: dict[str, Any] = {"contact_id": submission, "contacted_by": by, "outcome": outcome, "channel": channel}
    if note:
        body["note"] = note
    return await up.post("feedback", f"/v1/customers/{_id(customer_id)}/contacts", key, body)


@dataclass
class CampaignRow:
    campaign: dict[str, Any]
    outcomes: Section


async def campaigns(up: Upstreams, key: str) -> tuple[Section, list[CampaignRow]]:
    listing = Section(await up.get("campaign", "/v1/campaigns", key))
    items = listing.data.get("items", [])
    outcomes = await asyncio.gather(
        *(up.get("campaign", f"/v1/campaigns/{_id(item['id'])}/outcomes", key) for item in items)
    )
    return listing, [CampaignRow(item, Section(reply)) for item, reply in zip(items, outcomes, strict=True)]


async def campaign_detail(up: Upstreams, key: str, campaign_id: str) -> tuple[Section, Section, Section]:
    path = f"/v1/campaigns/{_id(campaign_id)}"
    replies = await asyncio.gather(
        up.get("campaign", path, key),
        up.get("campaign", f"{path}/report", key),
        up.get("campaign", f"{path}/outcomes", key),
    )
    definition, report, outcomes = (Section(reply) for reply in replies)
    return definition, report, outcomes


async def tickets(up: Upstreams, key: str, limit: int = 200) -> tuple[Section, dict[str, list[Any]]]:
    section = Section(await up.get("feedback", "/v1/tickets", key, params={"state": "open", "limit": limit}))
    groups = by_state(section.data.get("items", []))
    return section, {state: list(groups[state]) for state in ORDER}


async def retention(up: Upstreams, key: str, period: str) -> tuple[Section, Section]:
    kpis, cohorts = await asyncio.gather(
        up.get("insights", "/v1/kpis", key, params={"period": period}),
        up.get("insights", "/v1/cohorts", key, params={"period": period}),
    )
    return Section(kpis), Section(cohorts)
