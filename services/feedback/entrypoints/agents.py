"""Support agents: skills (categories, `vip`, languages), capacity and presence, used by routing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import RowMapping, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import Identifier, ShortText
from libs.common.problems import Problem
from services.feedback.adapters import agents_repo
from services.feedback.adapters.tables import agents
from services.feedback.entrypoints.common import Reader, Session, Writer

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


async def _view(session: AsyncSession, row: RowMapping) -> dict[str, Any]:
    load = (await agents_repo.loads(session)).get(row["agent_id"], 0)
    return {
        "agent_id": row["agent_id"],
        "name": row["name"],
        "skills": row["skills"],
        "max_load": row["max_load"],
        "online": row["online"],
        "current_load": load,
    }


async def _row(session: AsyncSession, agent_id: str) -> RowMapping:
    row = (await session.execute(select(agents).where(agents.c.agent_id == agent_id))).mappings().first()
    if row is None:
        raise Problem(404, "Not Found", f"no agent '{agent_id}'")
    return row


async def _upsert(session: AsyncSession, agent_id: str, body: AgentIn) -> None:
    values = {"name": body.name, "skills": sorted(set(body.skills)), "max_load": body.max_load, "online": body.online}
    stmt = pg_insert(agents).values(agent_id=agent_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[agents.c.agent_id], set_={**values, "updated_at": func.now()})
    )


@router.post("/agents", status_code=201, summary="Add an agent")
async def create_agent(body: AgentCreate, session: Session, _: Writer) -> dict[str, Any]:
    async with session.begin():
        if (await session.execute(select(agents.c.agent_id).where(agents.c.agent_id == body.agent_id))).first():
            raise Problem(
                409, "Conflict", f"agent '{body.agent_id}' exists", errors=[{"field": "agent_id", "message": "exists"}]
            )
        await _upsert(session, body.agent_id, body)
        return await _view(session, await _row(session, body.agent_id))


@router.put("/agents/{agent_id}", summary="Create or replace an agent")
async def put_agent(agent_id: str, body: AgentIn, session: Session, _: Writer) -> dict[str, Any]:
    async with session.begin():
        await _upsert(session, agent_id, body)
        return await _view(session, await _row(session, agent_id))


@router.get("/agents", summary="Agents with their current load")
async def list_agents(session: Session, _: Reader) -> dict[str, Any]:
    rows = (await session.execute(select(agents).order_by(agents.c.agent_id))).mappings().all()
    return {"items": [await _view(session, row) for row in rows]}


@router.get("/agents/{agent_id}", summary="One agent")
async def get_agent(agent_id: str, session: Session, _: Reader) -> dict[str, Any]:
    return await _view(session, await _row(session, agent_id))


@router.delete("/agents/{agent_id}", status_code=204, summary="Remove an agent (their tickets keep the assignment)")
async def delete_agent(agent_id: str, session: Session, _: Writer) -> Response:
    async with session.begin():
        result = await session.execute(delete(agents).where(agents.c.agent_id == agent_id))
        if not getattr(result, "rowcount", 0):
            raise Problem(404, "Not Found", f"no agent '{agent_id}'")
    return Response(status_code=204)
