"""Use cases of the agents API: add, replace, read and remove support agents, each with their current load."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters import agents


class AgentExists(Exception):
    pass


class NoSuchAgent(Exception):
    pass


async def _view(session: AsyncSession, row: RowMapping) -> dict[str, Any]:
    load = (await agents.loads(session)).get(row["agent_id"], 0)
    return {
        "agent_id": row["agent_id"],
        "name": row["name"],
        "skills": row["skills"],
        "max_load": row["max_load"],
        "online": row["online"],
        "current_load": load,
    }


async def get_agent(session: AsyncSession, agent_id: str) -> dict[str, Any]:
    row = await agents.get(session, agent_id)
    if row is None:
        raise NoSuchAgent(agent_id)
    return await _view(session, row)


async def create_agent(session: AsyncSession, agent_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """AgentExists when the id is taken."""
    async with session.begin():
        if await agents.get(session, agent_id) is not None:
            raise AgentExists(agent_id)
        await agents.upsert(session, agent_id, values)
        return await get_agent(session, agent_id)


async def put_agent(session: AsyncSession, agent_id: str, values: dict[str, Any]) -> dict[str, Any]:
    async with session.begin():
        await agents.upsert(session, agent_id, values)
        return await get_agent(session, agent_id)


async def list_agents(session: AsyncSession) -> list[dict[str, Any]]:
    return [await _view(session, row) for row in await agents.all_agents(session)]


async def delete_agent(session: AsyncSession, agent_id: str) -> None:
    async with session.begin():
        if not await agents.delete_agent(session, agent_id):
            raise NoSuchAgent(agent_id)
