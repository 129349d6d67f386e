"""What the customer-facing survey page needs before the answer: is this link still good, and what does it ask?"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.feedback.adapters import surveys
from services.feedback.domain.survey_tokens import verify_token
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.surveys import InactiveSurvey, TokenReused, TokenRevoked, UnknownSurvey


@dataclass(frozen=True)
class OpenLink:
    survey_id: str
    kind: str  # nps | csat
    name: str
    question: str


async def open_link(deps: FeedbackDeps, session: AsyncSession, survey_id: str, token: str) -> OpenLink:
    """The survey behind a genuine, unexpired, unused link; raises the same errors an answer would.

    Checked in the answer's order (signature, expiry, survey, single use), so the page never offers a form
    whose answer would then be refused for a reason the page could have known.
    """
    claims = verify_token(deps.token_secret, token, deps.clock(), expected_survey_id=survey_id)
    survey = await surveys.get_survey(session, survey_id)
    if survey is None:
        raise UnknownSurvey(survey_id)
    if not survey["active"]:
        raise InactiveSurvey(survey_id)
    held, used_at = await surveys.token_used_at(session, claims.nonce)
    if not held:
        raise TokenRevoked("this survey link is no longer valid")
    if used_at is not None:
        raise TokenReused("this survey link has already been used")
    return OpenLink(survey_id, str(survey["kind"]), str(survey["name"]), str(survey["question"] or ""))
