"""The page behind a survey link, `<base>/surveys/{id}?token=...`: the question, then a thank-you or a clear refusal.

No API key: the signed, single-use token is the credential. Plain HTML forms, no JavaScript, in the customer's
language (the link's `lang`, else Accept-Language).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.pages import Catalog, FormTooLarge, Locale, Pages, first, form_fields, request_locale
from services.feedback.domain.errors import FeedbackDomainError, InvalidValue
from services.feedback.domain.survey_tokens import ExpiredToken, TokenError
from services.feedback.entrypoints.common import Deps, Session
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.survey_page import OpenLink, open_link
from services.feedback.handlers.surveys import InactiveSurvey, TokenReused, UnknownSurvey, respond_with_token

router = APIRouter(tags=["survey page"], include_in_schema=False)
PAGES = Pages([Path(__file__).parent.parent / "templates"])
MAX_COMMENT_CHARS = 10_000

TEXTS = Catalog(
    {
        "en": {
            "title": "Your feedback",
            "nps_question": "How likely are you to recommend us to a friend or colleague?",
            "csat_question": "How satisfied are you with our service?",
            "nps_low": "0 = not at all likely",
            "nps_high": "10 = extremely likely",
            "csat_low": "1 = very dissatisfied",
            "csat_high": "5 = very satisfied",
            "comment": "Anything you would like to tell us? (optional)",
            "submit": "Send my answer",
            "pick_score": "Please choose a score.",
            "comment_too_long": "The comment is too long.",
            "thanks_title": "Thank you!",
            "thanks": "We have your answer. It helps us do better.",
            "used_title": "Already answered",
            "used": "This link has already been used to answer. Each link takes one answer, and yours is recorded.",
            "expired_title": "This link has expired",
            "expired": "The survey behind this link has closed. Thank you for wanting to answer.",
            "invalid_title": "This link is not valid",
            "invalid": "The link may be incomplete or changed. Please open it again from the message we sent you.",
            "closed_title": "This survey is closed",
            "closed": "This survey no longer takes answers. Thank you for your time.",
        },
        "zh": {
            "title": "您的反馈",
            "nps_question": "您有多大可能向朋友或同事推荐我们？",
            "csat_question": "您对我们的服务满意吗？",
            "nps_low": "0 = 完全不可能",
            "nps_high": "10 = 非常可能",
            "csat_low": "1 = 非常不满意",
            "csat_high": "5 = 非常满意",
            "comment": "还有什么想告诉我们的吗？（选填）",
            "submit": "提交回答",
            "pick_score": "请选择一个分数。",
            "comment_too_long": "留言太长了。",
            "thanks_title": "谢谢您！",
            "thanks": "我们已收到您的回答，这将帮助我们做得更好。",
            "used_title": "已经回答过了",
            "used": "此链接已被用于回答。每个链接只能回答一次，您的回答已记录。",
            "expired_title": "此链接已过期",
            "expired": "此链接对应的调查已结束。感谢您愿意作答。",
            "invalid_title": "此链接无效",
            "invalid": "链接可能不完整或已被修改。请从我们发给您的消息中重新打开。",
            "closed_title": "此调查已关闭",
            "closed": "此调查不再接受回答。感谢您的时间。",
        },
    }
)


def _problem_of(exc: FeedbackDomainError) -> tuple[str, int]:
    """Which refusal page, with the status the JSON API gives for the same error."""
    if isinstance(exc, TokenReused):
        return "used", 409
    if isinstance(exc, ExpiredToken):
        return "expired", 410
    if isinstance(exc, UnknownSurvey | InactiveSurvey):
        return "closed", 404 if isinstance(exc, UnknownSurvey) else 409
    if isinstance(exc, TokenError):
        return "invalid", 403
    raise exc


def _other_lang_url(request: Request, lang: Locale, token: str) -> str:
    other = "en" if lang == "zh" else "zh"
    return f"{request.url.path}?{urlencode({'token': token, 'lang': other})}"


def _problem_page(kind: str, status: int, lang: Locale) -> HTMLResponse:
    return PAGES.response("survey_problem.html", status, lang=lang, t=TEXTS.for_locale(lang), problem=kind)


def _form_page(
    request: Request,
    link: OpenLink,
    token: str,
    lang: Locale,
    *,
    error: str | None = None,
    score: int | None = None,
    comment: str = "",
    status: int = 200,
) -> HTMLResponse:
    low, high = (0, 10) if link.kind == "nps" else (1, 5)
    return PAGES.response(
        "survey.html",
        status,
        lang=lang,
        t=TEXTS.for_locale(lang),
        link=link,
        scores=list(range(low, high + 1)),
        token=token,
        action=request.url.path,
        error=error,
        score=score,
        comment=comment,
        other_lang_url=_other_lang_url(request, lang, token),
    )


@router.get("/surveys/{survey_id}", response_class=HTMLResponse)
async def survey_page(
    survey_id: str,
    request: Request,
    session: Session,
    deps: Deps,
    token: Annotated[str, Query(max_length=4096)] = "",
    lang: Annotated[str | None, Query(max_length=35)] = None,
) -> HTMLResponse:
    locale = request_locale(request, lang)
    try:
        async with session.begin():
            link = await open_link(deps, session, survey_id, token)
    except FeedbackDomainError as exc:
        return _problem_page(*_problem_of(exc), locale)
    return _form_page(request, link, token, locale)


def _score(raw: str | None, link: OpenLink) -> int | None:
    low, high = (0, 10) if link.kind == "nps" else (1, 5)
    if raw is None or not raw.strip().isdigit():
        return None
    value = int(raw)
    return value if low <= value <= high else None


@router.post("/surveys/{survey_id}", response_class=HTMLResponse)
async def answer_survey(survey_id: str, request: Request, session: Session, deps: Deps) -> HTMLResponse:
    try:
        fields = await form_fields(request)
    except FormTooLarge:
        return _problem_page("invalid", 413, request_locale(request))
    token = first(fields, "token") or ""
    locale = request_locale(request, first(fields, "lang"))
    try:
        async with session.begin():
            link = await open_link(deps, session, survey_id, token)
    except FeedbackDomainError as exc:
        return _problem_page(*_problem_of(exc), locale)
    texts = TEXTS.for_locale(locale)
    comment = (first(fields, "comment") or "").replace("\x00", "").strip()
    score = _score(first(fields, "score"), link)
    if score is None:
        return _form_page(request, link, token, locale, error=texts["pick_score"], comment=comment, status=422)
    if len(comment) > MAX_COMMENT_CHARS:
        return _form_page(
            request, link, token, locale, error=texts["comment_too_long"], score=score, comment=comment, status=422
        )
    return await _record(request, session, deps, link, token, locale, score, comment)


async def _record(
    request: Request,
    session: AsyncSession,
    deps: FeedbackDeps,
    link: OpenLink,
    token: str,
    locale: Locale,
    score: int,
    comment: str,
) -> HTMLResponse:
    try:
        async with session.begin():
            await respond_with_token(
                deps,
                session,
                request.app.state.runtime.outbox,
                survey_id=link.survey_id,
                token=token,
                nps=score if link.kind == "nps" else None,
                csat=score if link.kind == "csat" else None,
                comment=comment or None,
            )
    except InvalidValue as exc:
        return _form_page(request, link, token, locale, error=exc.message, comment=comment, status=422)
    except FeedbackDomainError as exc:  # a second tab answered first, or the link expired meanwhile
        return _problem_page(*_problem_of(exc), locale)
    return PAGES.response("survey_done.html", 201, lang=locale, t=TEXTS.for_locale(locale))
