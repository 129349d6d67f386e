"""Support agents: skills (categories, `vip`, languages), capacity and presence, used by routing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.events import Identifier, ShortText
from libs.common.problems import Problem
from services.feedback.entrypoints.common import Reader, Session, Writer
from services.feedback.handlers import agents as use

router = APIRouter(prefix="/v1", tags=["agents"])

Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, to_lower=True)]


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ShortText
    skills: list[Skill] = Field(default_factory=list, max_length=100, description="Category names, `vip`, ...")
    max_load: int = Field(default=10, ge=0, le=1000, description="Open tickets the agent takes at most.")
    online: bool = True


class AgentCreate(AgentIn):
    agent_id: Identifier


def _values(body: AgentIn) -> dict[str, Any]:
    return {"name": body.name, "skills": sorted(set(body.skills)), "max_load": body.max_load, "online": body.online}


def _not_found(agent_id: str) -> Problem:
    return Problem(404, "Not Found", f"no agent '{agent_id}'")


@router.post("/agents", status_code=201, summary="Add an agent")
async def create_agent(body: AgentCreate, session: Session, _: Writer) -> dict[str, Any]:
    try:
        return await use.create_agent(session, body.agent_id, _values(body))
    except use.AgentExists as exc:
        raise Problem(
            409, "Conflict", f"agent '{body.agent_id}' exists", errors=[{"field": "agent_id", "message": "exists"}]
        ) from exc


@router.put("/agents/{agent_id}", summary="Create or replace an agent")
async def put_agent(agent_id: str, body: AgentIn, session: Session, _: Writer) -> dict[str, Any]:
    return await use.put_agent(session, agent_id, _values(body))


@router.get("/agents", summary="Agents with their current load")
async def list_agents(session: Session, _: Reader) -> dict[str, Any]:
    return {"items": await use.list_agents(session)}


@router.get("/agents/{agent_id}", summary="One agent")
async def get_agent(agent_id: str, session: Session, _: Reader) -> dict[str, Any]:
    try:
        return await use.get_agent(session, agent_id)
    except use.NoSuchAgent as exc:
        raise _not_found(agent_id) from exc


@router.delete("/agents/{agent_id}", status_code=204, summary="Remove an agent (their tickets keep the assignment)")
async def delete_agent(agent_id: str, session: Session, _: Writer) -> Response:
    try:
        await use.delete_agent(session, agent_id)
    except use.NoSuchAgent as exc:
        raise _not_found(agent_id) from exc
    return Response(status_code=204)
