"""Use case behind GET /v1/customers/{id}/score/history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.adapters import history


async def score_history_page(
    session: AsyncSession, customer_id: str, before: tuple[datetime, str] | None, limit: int
) -> tuple[list[Row[Any]], tuple[datetime, str] | None]:
    """A page of a customer's changes, newest first, and the key the next page starts before (None: last page)."""
    rows = await history.page(session, customer_id, before, limit)
    page = rows[:limit]
    return page, (page[-1].at, page[-1].event_id) if len(rows) > limit else None
