import pytest

from services.feedback.domain.errors import InvalidValue
from services.feedback.domain.routing import Agent, RoutingRequest, route


def agent(agent_id: str, skills: str, load: int = 0, max_load: int = 3, online: bool = True) -> Agent:
    return Agent(agent_id, frozenset(skills.split()), max_load, load, online)


def test_vip_tier_goes_to_vip_queue_and_needs_vip_skill() -> None:
    agents = [agent("a1", "billing"), agent("a2", "billing vip", load=2)]
    decision = route(RoutingRequest("high", "billing"), agents)
    assert decision.queue == "vip"
    assert decision.agent_id == "a2"


def test_regular_tier_uses_category_queue_and_least_loaded() -> None:
    agents = [agent("a1", "billing", load=2), agent("a2", "billing vip", load=1), agent("a3", "shipping")]
    decision = route(RoutingRequest("low", "billing"), agents)
    assert decision.queue == "billing"
    assert decision.agent_id == "a2"


def test_extra_skill_tags_are_required() -> None:
    agents = [agent("a1", "billing"), agent("a2", "billing zh", load=2)]
    assert route(RoutingRequest("medium", "billing", frozenset({"zh"})), agents).agent_id == "a2"


def test_tie_broken_by_agent_id() -> None:
    agents = [agent("b", "returns", 1), agent("a", "returns", 1), agent("c", "returns", 1)]
    assert route(RoutingRequest("low", "returns"), agents).agent_id == "a"
    assert route(RoutingRequest("low", "returns"), list(reversed(agents))).agent_id == "a"


def test_offline_or_full_agents_leave_ticket_in_queue() -> None:
    agents = [agent("a1", "billing", online=False), agent("a2", "billing", load=3, max_load=3)]
    decision = route(RoutingRequest("low", "billing"), agents)
    assert decision.queue == "billing"
    assert decision.agent is None
    assert route(RoutingRequest("vip", "billing"), [agent("a3", "billing")]).agent is None


def test_empty_category_rejected() -> None:
    with pytest.raises(InvalidValue) as exc:
        RoutingRequest("low", "")
    assert exc.value.field == "category"
