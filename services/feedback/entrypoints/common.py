"""What the feedback routes share: dependencies, scopes and domain errors as RFC 9457 problems."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import problem_response
from libs.common.runtime import db_session
from services.feedback.domain.errors import FeedbackDomainError, IllegalTransition
from services.feedback.domain.survey_tokens import ExpiredToken, ForgedToken, MalformedToken, TokenError, WrongSurvey
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.surveys import InactiveSurvey, TokenReused, TokenRevoked, UnknownSurvey
from services.feedback.handlers.tickets import UnknownTicket

Session = Annotated[AsyncSession, Depends(db_session)]
Writer = Annotated[Principal, Depends(require_scope("feedback:write"))]
Reader = Annotated[Principal, Depends(require_scope("customers:read"))]


def deps_of(request: Request) -> FeedbackDeps:
    deps: FeedbackDeps = request.app.state.feedback
    return deps


Deps = Annotated[FeedbackDeps, Depends(deps_of)]


def utc(moment: datetime | None) -> datetime | None:
    """Query times without a zone are read as UTC, the platform's time everywhere."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_STATUS: list[tuple[type[FeedbackDomainError], int, str]] = [
    (UnknownTicket, 404, "Not Found"),
    (UnknownSurvey, 404, "Not Found"),
    (InactiveSurvey, 409, "Conflict"),
    (IllegalTransition, 409, "Conflict"),
    (MalformedToken, 400, "Malformed token"),
    (ForgedToken, 403, "Invalid token"),
    (WrongSurvey, 403, "Invalid token"),
    (ExpiredToken, 410, "Expired token"),
    (TokenRevoked, 410, "Revoked token"),
    (TokenReused, 409, "Token already used"),
    (TokenError, 400, "Invalid token"),
]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FeedbackDomainError)
    async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FeedbackDomainError)
        status, title = next(((s, t) for kind, s, t in _STATUS if isinstance(exc, kind)), (422, "Invalid request"))
        field = exc.field or "body"
        return problem_response(
            status,
            title,
            exc.message,
            instance=request.url.path,
            errors=[{"field": field, "message": exc.message, "code": type(exc).__name__}],
        )
