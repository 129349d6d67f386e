"""Survey definitions (feedback:write), signed per-customer links, and the customer-facing response endpoint."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import RowMapping, delete, func, select, update

from libs.common.events import Identifier, LongText, ShortText
from libs.common.problems import Problem
from services.feedback.adapters import surveys_repo
from services.feedback.adapters.tables import surveys
from services.feedback.entrypoints.common import Deps, Reader, Session, Writer
from services.feedback.handlers.surveys import issue_link, respond_with_token

router = APIRouter(prefix="/v1", tags=["surveys"])


class SurveyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: ShortText
    kind: Literal["nps", "csat"] = Field(description="The score every response must carry.")
    question: LongText = ""
    active: bool = True


class SurveyCreate(SurveyIn):
    survey_id: Identifier | None = Field(default=None, description="Generated when omitted.")


class LinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: Identifier
    expires_in_days: int | None = Field(default=None, ge=1, le=365, description="Default: RETAIN_SURVEY_LINK_TTL_DAYS")
    locale: Literal["en", "zh"] | None = Field(
        default=None, description="The customer's language: the page uses it; without it, the browser's preference."
    )


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    nps: int | None = Field(default=None, ge=0, le=10)
    csat: int | None = Field(default=None, ge=1, le=5)
    comment: LongText | None = None


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


async def _get(session: Session, survey_id: str) -> RowMapping:
    row = await surveys_repo.get_survey(session, survey_id)
    if row is None:
        raise Problem(404, "Not Found", f"no survey '{survey_id}'")
    return row


@router.post("/surveys", status_code=201, summary="Define a survey")
async def create_survey(body: SurveyCreate, session: Session, _: Writer) -> dict[str, Any]:
    survey_id = body.survey_id or f"sv-{uuid.uuid4().hex[:12]}"
    async with session.begin():
        if await surveys_repo.get_survey(session, survey_id) is not None:
            raise Problem(
                409, "Conflict", f"survey '{survey_id}' exists", errors=[{"field": "survey_id", "message": "exists"}]
            )
        await session.execute(surveys.insert().values(survey_id=survey_id, **body.model_dump(exclude={"survey_id"})))
        return _view(await _get(session, survey_id))


@router.get("/surveys", summary="Survey definitions")
async def list_surveys(session: Session, _: Reader) -> dict[str, Any]:
    rows = (await session.execute(select(surveys).order_by(surveys.c.created_at))).mappings().all()
    return {"items": [_view(row) for row in rows]}


@router.get("/surveys/{survey_id}", summary="One survey definition")
async def get_survey(survey_id: str, session: Session, _: Reader) -> dict[str, Any]:
    return _view(await _get(session, survey_id))


@router.put("/surveys/{survey_id}", summary="Replace a survey definition")
async def put_survey(survey_id: str, body: SurveyIn, session: Session, _: Writer) -> dict[str, Any]:
    async with session.begin():
        await _get(session, survey_id)
        await session.execute(
            update(surveys).where(surveys.c.survey_id == survey_id).values(**body.model_dump(), updated_at=func.now())
        )
        return _view(await _get(session, survey_id))


@router.delete("/surveys/{survey_id}", status_code=204, summary="Delete a survey (its responses stay in reports)")
async def delete_survey(survey_id: str, session: Session, _: Writer) -> Response:
    async with session.begin():
        await _get(session, survey_id)
        await session.execute(delete(surveys).where(surveys.c.survey_id == survey_id))
    return Response(status_code=204)


@router.post("/surveys/{survey_id}/links", status_code=201, summary="Issue a signed, single-use link for a customer")
async def create_link(survey_id: str, body: LinkIn, session: Session, deps: Deps, _: Writer) -> dict[str, Any]:
    ttl = timedelta(days=body.expires_in_days or deps.settings.survey_link_ttl_days)
    async with session.begin():
        token, expires_at = await issue_link(deps, session, survey_id, body.customer_id, ttl)
    base = deps.settings.survey_link_base_url.rstrip("/")
    return {
        "survey_id": survey_id,
        "customer_id": body.customer_id,
        "token": token,
        "url": f"{base}/surveys/{quote(survey_id)}?token={quote(token)}"
        + (f"&lang={body.locale}" if body.locale else ""),
        "expires_at": expires_at.isoformat(),
    }


@router.post(
    "/surveys/{survey_id}/responses",
    status_code=201,
    summary="Answer a survey through a signed link (the token is the credential: no API key)",
)
async def respond(survey_id: str, body: ResponseIn, request: Request, session: Session, deps: Deps) -> dict[str, Any]:
    async with session.begin():
        recorded = await respond_with_token(
            deps,
            session,
            request.app.state.runtime.outbox,
            survey_id=survey_id,
            token=body.token,
            nps=body.nps,
            csat=body.csat,
            comment=body.comment,
        )
    return {"survey_id": survey_id, "status": "recorded", "sentiment": recorded.sentiment.label}
