"""Assignment of a newly opened ticket: its queue, then the least-loaded eligible agent (domain/routing.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters import agents
from services.feedback.domain.routing import RoutingDecision, RoutingRequest, route


async def assign(session: AsyncSession, tier: str, category: str) -> RoutingDecision:
    candidates = await agents.load_agents(session, lock=True)
    return route(RoutingRequest(tier=tier, category=category), candidates)
