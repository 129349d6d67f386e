"""Ticket routing: pick a queue, then the least-loaded eligible agent.

Queue = ``vip`` for the top tier (vip/high), otherwise the ticket category.
An agent is eligible when online, below their concurrent-ticket limit and
holding every required skill tag: the category, ``vip`` for the VIP queue,
plus any extra tags the caller asks for (a language, a product line).
Among eligible agents the one with the fewest open tickets wins; ties go to
the smallest agent id, so replaying the same inputs routes the same way.
No eligible agent means the ticket waits in its queue (agent is None).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.feedback.domain.errors import InvalidValue

VIP_QUEUE = "vip"
VIP_SKILL = "vip"
VIP_TIERS = frozenset({"vip", "high"})


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    skills: frozenset[str]
    max_load: int
    current_load: int = 0
    online: bool = True

    def __post_init__(self) -> None:
        if self.max_load < 0:
            raise InvalidValue("max_load", "must be >= 0")
        if self.current_load < 0:
            raise InvalidValue("current_load", "must be >= 0")

    @property
    def has_capacity(self) -> bool:
        return self.current_load < self.max_load


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    tier: str
    category: str
    required_skills: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.category:
            raise InvalidValue("category", "must not be empty")


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    queue: str
    agent: Agent | None  # None: stays in the queue until someone frees up

    @property
    def agent_id(self) -> str | None:
        return self.agent.agent_id if self.agent else None


def queue_for(tier: str, category: str) -> str:
    return VIP_QUEUE if tier in VIP_TIERS else category


def required_skills(request: RoutingRequest) -> frozenset[str]:
    skills = {request.category, *request.required_skills}
    if request.tier in VIP_TIERS:
        skills.add(VIP_SKILL)
    return frozenset(skills)


def eligible_agents(request: RoutingRequest, agents: Iterable[Agent]) -> list[Agent]:
    needed = required_skills(request)
    return [a for a in agents if a.online and a.has_capacity and needed <= a.skills]


def route(request: RoutingRequest, agents: Iterable[Agent]) -> RoutingDecision:
    candidates = eligible_agents(request, agents)
    chosen = min(candidates, key=lambda a: (a.current_load, a.agent_id), default=None)
    return RoutingDecision(queue_for(request.tier, request.category), chosen)
