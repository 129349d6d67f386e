"""Use cases of the survey definitions API: define, read, replace and delete surveys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters import surveys


class SurveyExists(Exception):
    pass


class NoSuchSurvey(Exception):
    pass


def _view(row: RowMapping) -> dict[str, Any]:
    return {
        "survey_id": row["survey_id"],
        "name": row["name"],
        "kind": row["kind"],
        "question": row["question"],
        "active": row["active"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


async def _row(session: AsyncSession, survey_id: str) -> RowMapping:
    row = await surveys.get_survey(session, survey_id)
    if row is None:
        raise NoSuchSurvey(survey_id)
    return row


async def get_survey(session: AsyncSession, survey_id: str) -> dict[str, Any]:
    return _view(await _row(session, survey_id))


async def list_surveys(session: AsyncSession) -> list[dict[str, Any]]:
    return [_view(row) for row in await surveys.all_surveys(session)]


async def create_survey(session: AsyncSession, survey_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """SurveyExists when the id is taken."""
    async with session.begin():
        if await surveys.get_survey(session, survey_id) is not None:
            raise SurveyExists(survey_id)
        await surveys.insert_survey(session, survey_id, values)
        return await get_survey(session, survey_id)


async def put_survey(session: AsyncSession, survey_id: str, values: dict[str, Any]) -> dict[str, Any]:
    async with session.begin():
        await _row(session, survey_id)
        await surveys.update_survey(session, survey_id, values)
        return await get_survey(session, survey_id)


async def delete_survey(session: AsyncSession, survey_id: str) -> None:
    async with session.begin():
        await _row(session, survey_id)
        await surveys.delete_survey(session, survey_id)
