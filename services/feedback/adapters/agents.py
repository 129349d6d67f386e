"""Agents and their current load (open tickets assigned to them), for routing and the agents API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import agents, tickets
from services.feedback.domain.routing import Agent

OPEN = tickets.c.status.notin_(("resolved", "closed"))


async def loads(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(tickets.c.agent_id, func.count())
        .where(tickets.c.agent_id.is_not(None), OPEN)
        .group_by(tickets.c.agent_id)
    )
    return {agent_id: int(count) for agent_id, count in rows}


async def load_agents(session: AsyncSession, *, lock: bool = False) -> list[Agent]:
    """`lock`: row-locks every agent so two concurrent assignments cannot both take the last free slot."""
    query = select(agents).order_by(agents.c.agent_id)
    if lock:
        query = query.with_for_update()
    rows = (await session.execute(query)).mappings().all()
    current = await loads(session)
    return [to_domain(row, current.get(row["agent_id"], 0)) for row in rows]


def to_domain(row: RowMapping, load: int) -> Agent:
    return Agent(
        agent_id=row["agent_id"],
        skills=frozenset(row["skills"]),
        max_load=row["max_load"],
        current_load=load,
        online=row["online"],
    )


async def get(session: AsyncSession, agent_id: str) -> RowMapping | None:
    return (await session.execute(select(agents).where(agents.c.agent_id == agent_id))).mappings().first()


async def all_agents(session: AsyncSession) -> list[RowMapping]:
    return list((await session.execute(select(agents).order_by(agents.c.agent_id))).mappings().all())


async def upsert(session: AsyncSession, agent_id: str, values: dict[str, Any]) -> None:
    stmt = pg_insert(agents).values(agent_id=agent_id, **values)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[agents.c.agent_id], set_={**values, "updated_at": func.now()})
    )


async def delete_agent(session: AsyncSession, agent_id: str) -> bool:
    """False when there was no such agent."""
    result = await session.execute(delete(agents).where(agents.c.agent_id == agent_id))
    return bool(getattr(result, "rowcount", 0))
