"""Survey definitions, issued tokens and recorded responses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters.tables import survey_responses, survey_tokens, surveys


async def get_survey(session: AsyncSession, survey_id: str) -> RowMapping | None:
    return (await session.execute(select(surveys).where(surveys.c.survey_id == survey_id))).mappings().first()


async def all_surveys(session: AsyncSession) -> list[RowMapping]:
    return list((await session.execute(select(surveys).order_by(surveys.c.created_at))).mappings().all())


async def insert_survey(session: AsyncSession, survey_id: str, values: dict[str, Any]) -> None:
    await session.execute(surveys.insert().values(survey_id=survey_id, **values))


async def update_survey(session: AsyncSession, survey_id: str, values: dict[str, Any]) -> None:
    await session.execute(
        update(surveys).where(surveys.c.survey_id == survey_id).values(**values, updated_at=func.now())
    )


async def delete_survey(session: AsyncSession, survey_id: str) -> None:
    await session.execute(delete(surveys).where(surveys.c.survey_id == survey_id))


async def add_token(
    session: AsyncSession, *, nonce: str, survey_id: str, customer_id: str, issued_at: datetime, expires_at: datetime
) -> None:
    await session.execute(
        survey_tokens.insert().values(
            nonce=nonce, survey_id=survey_id, customer_id=customer_id, issued_at=issued_at, expires_at=expires_at
        )
    )


async def use_token(session: AsyncSession, nonce: str, at: datetime) -> bool:
    """Marks the token used; False when it was used before or is not ours (revoked, erased)."""
    result = await session.execute(
        update(survey_tokens)
        .where(survey_tokens.c.nonce == nonce, survey_tokens.c.used_at.is_(None))
        .values(used_at=at)
        .returning(survey_tokens.c.nonce)
    )
    return result.first() is not None


async def token_exists(session: AsyncSession, nonce: str) -> bool:
    return (await session.scalar(select(survey_tokens.c.nonce).where(survey_tokens.c.nonce == nonce))) is not None


async def insert_response(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """The new row's id, or None when this response (same key) was recorded before."""
    result = await session.execute(
        pg_insert(survey_responses)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[survey_responses.c.response_key])
        .returning(survey_responses.c.id)
    )
    response_id: int | None = result.scalar()
    return response_id


async def token_used_at(session: AsyncSession, nonce: str) -> tuple[bool, datetime | None]:
    """(we hold this token, when its one answer was recorded): what the survey page shows before an answer."""
    row = (await session.execute(select(survey_tokens.c.used_at).where(survey_tokens.c.nonce == nonce))).first()
    return (False, None) if row is None else (True, row.used_at)
