"""Contacts made by account managers and retention teams."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import contacts


async def insert_contact(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new row's id, or None when this contact (same key) was recorded before."""
    result = await session.execute(
        pg_insert(contacts)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[contacts.c.contact_key])
        .returning(contacts.c.id)
    )
    contact_id: int | None = result.scalar()
    return contact_id


async def contacts_of(session: AsyncSession, customer_id: str, limit: int) -> list[RowMapping]:
    query = (
        select(contacts)
        .where(contacts.c.customer_id == customer_id)
        .order_by(contacts.c.contacted_at.desc(), contacts.c.id.desc())
        .limit(limit)
    )
    return list((await session.execute(query)).mappings().all())
