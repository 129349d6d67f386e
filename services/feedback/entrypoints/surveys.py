"""Survey definitions (feedback:write), signed per-customer links, and the customer-facing response endpoint."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from libs.common.events import Identifier, LongText, ShortText
from libs.common.problems import Problem
from services.feedback.entrypoints.common import Deps, Reader, Session, Writer
from services.feedback.handlers import survey_definitions as definitions
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


def _not_found(survey_id: str) -> Problem:
    return Problem(404, "Not Found", f"no survey '{survey_id}'")


@router.post("/surveys", status_code=201, summary="Define a survey")
async def create_survey(body: SurveyCreate, session: Session, _: Writer) -> dict[str, Any]:
    survey_id = body.survey_id or f"sv-{uuid.uuid4().hex[:12]}"
    try:
        return await definitions.create_survey(session, survey_id, body.model_dump(exclude={"survey_id"}))
    except definitions.SurveyExists as exc:
        raise Problem(
            409, "Conflict", f"survey '{survey_id}' exists", errors=[{"field": "survey_id", "message": "exists"}]
        ) from exc


@router.get("/surveys", summary="Survey definitions")
async def list_surveys(session: Session, _: Reader) -> dict[str, Any]:
    return {"items": await definitions.list_surveys(session)}


@router.get("/surveys/{survey_id}", summary="One survey definition")
async def get_survey(survey_id: str, session: Session, _: Reader) -> dict[str, Any]:
    try:
        return await definitions.get_survey(session, survey_id)
    except definitions.NoSuchSurvey as exc:
        raise _not_found(survey_id) from exc


@router.put("/surveys/{survey_id}", summary="Replace a survey definition")
async def put_survey(survey_id: str, body: SurveyIn, session: Session, _: Writer) -> dict[str, Any]:
    try:
        return await definitions.put_survey(session, survey_id, body.model_dump())
    except definitions.NoSuchSurvey as exc:
        raise _not_found(survey_id) from exc


@router.delete("/surveys/{survey_id}", status_code=204, summary="Delete a survey (its responses stay in reports)")
async def delete_survey(survey_id: str, session: Session, _: Writer) -> Response:
    try:
        await definitions.delete_survey(session, survey_id)
    except definitions.NoSuchSurvey as exc:
        raise _not_found(survey_id) from exc
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
