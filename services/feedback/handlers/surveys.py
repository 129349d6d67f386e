"""Survey responses (from `survey.response` events and signed links) and the links themselves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.consumer import EventHandler, HandlerContext, PoisonEvent
from libs.common.contracts import FeedbackReceived, derived
from libs.common.envelope import CloudEvent
from libs.common.outbox import Outbox
from libs.common.topics import FEEDBACK_EVENTS
from services.feedback.adapters import customers, surveys
from services.feedback.adapters.tables import aliases, erasure_guard
from services.feedback.domain.errors import FeedbackDomainError, InvalidValue
from services.feedback.domain.nps import validate_csat_score, validate_nps_score
from services.feedback.domain.sentiment import Sentiment, analyze
from services.feedback.domain.survey_tokens import TokenError, issue_token, verify_token
from services.feedback.handlers.deps import SOURCE, FeedbackDeps
from services.feedback.handlers.sealing import Vault


class TokenReused(TokenError):
    """Genuine token whose one response was already recorded."""


class TokenRevoked(TokenError):
    """Genuine signature but we hold no such link any more (the customer was erased)."""


class UnknownSurvey(InvalidValue):
    def __init__(self, survey_id: str) -> None:
        super().__init__("survey_id", f"unknown survey {survey_id!r}")


class InactiveSurvey(InvalidValue):
    def __init__(self, survey_id: str) -> None:
        super().__init__("survey_id", f"survey {survey_id!r} is not active")


@dataclass(frozen=True)
class Answer:
    customer_id: str
    survey_id: str | None
    nps: int | None
    csat: int | None
    comment: str | None
    at: datetime


@dataclass(frozen=True)
class Recorded:
    response_id: int | None  # None: recorded before (a redelivery)
    sentiment: Sentiment


async def record_response(
    deps: FeedbackDeps,
    session: AsyncSession,
    outbox: Outbox,
    answer: Answer,
    *,
    response_key: str,
    channel: Literal["event", "link"],
) -> Recorded:
    if answer.nps is None and answer.csat is None:
        raise InvalidValue("nps", "a response needs an nps or a csat score")
    if answer.nps is not None:
        validate_nps_score(answer.nps)
    if answer.csat is not None:
        validate_csat_score(answer.csat)
    answer = replace(answer, customer_id=await aliases.lock_and_resolve(session, answer.customer_id))
    sentiment = analyze(answer.comment, answer.nps, answer.csat)
    facts = await customers.facts(session, answer.customer_id)
    response_id = await surveys.insert_response(
        session,
        {
            "response_key": response_key,
            "customer_id": answer.customer_id,
            "survey_id": answer.survey_id,
            "nps": answer.nps,
            "csat": answer.csat,
            "comment": await Vault(deps.personal).seal_comment(answer.customer_id, answer.comment),
            "sentiment": sentiment.label,
            "sentiment_score": sentiment.score,
            "tier": facts.tier,
            "segments": facts.segments,
            "channel": channel,
            "responded_at": answer.at,
        },
    )
    if response_id is not None:
        await outbox.add(session, FEEDBACK_EVENTS, *_received_events(answer, sentiment, response_key))
    return Recorded(response_id, sentiment)


def _received_events(answer: Answer, sentiment: Sentiment, response_key: str) -> list[CloudEvent]:
    """One `feedback.received` per score type: scoring reads NPS, reports read both."""
    events = []
    scores: tuple[tuple[Literal["nps", "csat"], int | None], ...] = (("nps", answer.nps), ("csat", answer.csat))
    for score_type, score in scores:
        if score is None:
            continue
        received = FeedbackReceived(
            score_type=score_type, score=score, sentiment=sentiment.label, survey_id=answer.survey_id
        )
        events.append(
            derived(
                received,
                cause=f"{response_key}:{score_type}",
                source=SOURCE,
                subject=answer.customer_id,
                time=answer.at,
            )[1]
        )
    return events


def _opt_int(data: dict[str, object], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"data.{key}", f"must be an integer, got {value!r}")
    return value


def _opt_str(data: dict[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"data.{key}", "must be a string")
    return value


def survey_response_handler(deps: FeedbackDeps) -> EventHandler:
    async def on_survey_response(ctx: HandlerContext, event: CloudEvent) -> None:
        if not await erasure_guard.admits(ctx.session, event):
            return
        try:
            answer = Answer(
                customer_id=event.subject,
                survey_id=_opt_str(event.data, "survey_id"),
                nps=_opt_int(event.data, "nps"),
                csat=_opt_int(event.data, "csat"),
                comment=_opt_str(event.data, "comment"),
                at=event.time,
            )
            await record_response(deps, ctx.session, ctx.outbox, answer, response_key=event.id, channel="event")
        except FeedbackDomainError as exc:
            raise PoisonEvent(exc.message) from exc

    return on_survey_response


async def _active_survey(session: AsyncSession, survey_id: str) -> str:
    survey = await surveys.get_survey(session, survey_id)
    if survey is None:
        raise UnknownSurvey(survey_id)
    if not survey["active"]:
        raise InactiveSurvey(survey_id)
    kind: str = survey["kind"]
    return kind


async def issue_link(
    deps: FeedbackDeps, session: AsyncSession, survey_id: str, customer_id: str, ttl: timedelta
) -> tuple[str, datetime]:
    await _active_survey(session, survey_id)
    now = deps.clock()
    # Tokens carry whole seconds; round down so the stored expiry equals the signed one.
    expires_at = (now + ttl).replace(microsecond=0)
    customer_id = await aliases.lock_and_resolve(session, customer_id)  # the token row is written under it
    token = issue_token(deps.token_secret, survey_id, customer_id, expires_at)
    claims = verify_token(deps.token_secret, token, now)
    await surveys.add_token(
        session, nonce=claims.nonce, survey_id=survey_id, customer_id=customer_id, issued_at=now, expires_at=expires_at
    )
    return token, expires_at


async def respond_with_token(
    deps: FeedbackDeps,
    session: AsyncSession,
    outbox: Outbox,
    *,
    survey_id: str,
    token: str,
    nps: int | None,
    csat: int | None,
    comment: str | None,
) -> Recorded:
    """Checks run trust-first: the signature before anything the token says, then single use."""
    now = deps.clock()
    claims = verify_token(deps.token_secret, token, now, expected_survey_id=survey_id)
    kind = await _active_survey(session, survey_id)
    if kind == "nps" and nps is None:
        raise InvalidValue("nps", "this survey asks for an NPS score (0-10)")
    if kind == "csat" and csat is None:
        raise InvalidValue("csat", "this survey asks for a CSAT score (1-5)")
    if not await surveys.use_token(session, claims.nonce, now):
        if await surveys.token_exists(session, claims.nonce):
            raise TokenReused("this survey link has already been used")
        raise TokenRevoked("this survey link is no longer valid")
    answer = Answer(claims.customer_id, survey_id, nps, csat, comment, now)
    return await record_response(deps, session, outbox, answer, response_key=f"token:{claims.nonce}", channel="link")
