"""The unsubscribe and preference page behind the signed link in every marketing message.

`GET /unsubscribe?token=...` shows the choices; a form POST applies them; a POST whose body is
`List-Unsubscribe=One-Click` (RFC 8058, sent by the mail provider's unsubscribe button) withdraws the channel the
message came on. No API key: the signed token is the credential. Each change is a `consent.changed` event.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from libs.common.pages import Catalog, FormTooLarge, Locale, Pages, first, form_fields, request_locale
from libs.common.unsubscribe import (
    PAGE_PATH,
    ExpiredUnsubscribeToken,
    UnsubscribeClaims,
    UnsubscribeTokenError,
    secret_of,
    verify_unsubscribe_token,
)
from services.ingest.domain.preferences import (
    ONE_CLICK_BODY,
    PAGE_CHANNELS,
    choices_from_form,
    consent_events,
    one_click_submission,
)
from services.ingest.entrypoints.common import deps_of
from services.ingest.handlers.preferences import record_consent_changes

router = APIRouter(tags=["preference page"], include_in_schema=False)
PAGES = Pages([Path(__file__).parent.parent / "templates"])

TEXTS = Catalog(
    {
        "en": {
            "title": "Your message preferences",
            "intro": "You received this message by {channel}. Choose what you still want to hear about.",
            "stop_this": "Unsubscribe from {channel}",
            "stop_all": "Unsubscribe from all marketing",
            "per_channel": "Or choose per channel",
            "keep": "no change",
            "stop": "stop",
            "allow": "allow",
            "save": "Save my choices",
            "note": "Service messages about your orders and tickets are not affected.",
            "done_title": "Your preferences are saved",
            "done_stopped": "We will no longer send you marketing by: {channels}.",
            "done_allowed": "You may hear from us by: {channels}.",
            "nothing": "Nothing was changed.",
            "expired_title": "This link has expired",
            "expired": "Please use the link in a more recent message from us, or contact us to unsubscribe.",
            "invalid_title": "This link is not valid",
            "invalid": "The link may be incomplete or changed. Please open it again from the message we sent you.",
            "email": "email",
            "sms": "text message",
            "wecom": "WeCom",
            "push": "app notifications",
            "phone": "phone calls",
            "webhook": "partner channels",
        },
        "zh": {
            "title": "消息订阅设置",
            "intro": "这条消息是通过{channel}发给您的。请选择您仍希望接收的内容。",
            "stop_this": "退订{channel}消息",
            "stop_all": "退订全部营销消息",
            "per_channel": "或按渠道选择",
            "keep": "不变",
            "stop": "退订",
            "allow": "接收",
            "save": "保存选择",
            "note": "有关订单和工单的服务消息不受影响。",
            "done_title": "已保存您的设置",
            "done_stopped": "我们将不再通过以下渠道向您发送营销消息：{channels}。",
            "done_allowed": "我们可以通过以下渠道联系您：{channels}。",
            "nothing": "没有任何更改。",
            "expired_title": "此链接已过期",
            "expired": "请使用我们较新消息中的链接，或联系我们退订。",
            "invalid_title": "此链接无效",
            "invalid": "链接可能不完整或已被修改。请从我们发给您的消息中重新打开。",
            "email": "电子邮件",
            "sms": "短信",
            "wecom": "企业微信",
            "push": "应用通知",
            "phone": "电话",
            "webhook": "合作渠道",
        },
    }
)


def _secret(request: Request) -> str:
    state = request.app.state
    if not hasattr(state, "unsubscribe_secret"):
        state.unsubscribe_secret = secret_of(request.app.state.settings.unsubscribe_token_secret)
    secret: str = state.unsubscribe_secret
    return secret


def _verify(request: Request, token: str) -> UnsubscribeClaims:
    return verify_unsubscribe_token(_secret(request), token, datetime.now(UTC))


def _problem(exc: UnsubscribeTokenError, lang: Locale) -> HTMLResponse:
    kind, status = ("expired", 410) if isinstance(exc, ExpiredUnsubscribeToken) else ("invalid", 403)
    return PAGES.response("preferences_problem.html", status, lang=lang, t=TEXTS.for_locale(lang), problem=kind)


@router.get(PAGE_PATH, response_class=HTMLResponse)
async def preference_page(
    request: Request,
    token: Annotated[str, Query(max_length=4096)] = "",
    lang: Annotated[str | None, Query(max_length=35)] = None,
) -> HTMLResponse:
    locale = request_locale(request, lang)
    try:
        claims = _verify(request, token)
    except UnsubscribeTokenError as exc:
        return _problem(exc, locale)
    texts = TEXTS.for_locale(locale)
    other = "en" if locale == "zh" else "zh"
    return PAGES.response(
        "preferences.html",
        lang=locale,
        t=texts,
        token=token,
        channel_name=texts[claims.channel],
        channels=[(channel, texts[channel]) for channel in PAGE_CHANNELS],
        # Names this one showing of the form: submitting it twice repeats the same event ids.
        submission=secrets.token_urlsafe(12),
        action=PAGE_PATH,
        other_lang_url=f"{PAGE_PATH}?{urlencode({'token': token, 'lang': other})}",
    )


@router.post(PAGE_PATH)
async def apply_preferences(request: Request) -> Response:
    try:
        fields = await form_fields(request)
    except FormTooLarge:
        return PlainTextResponse("form too large", status_code=413)
    token = first(fields, "token") or request.query_params.get("token", "")
    locale = request_locale(request, first(fields, "lang"))
    one_click = first(fields, "List-Unsubscribe") == ONE_CLICK_BODY
    try:
        claims = _verify(request, token)
    except UnsubscribeTokenError as exc:
        if one_click:
            return PlainTextResponse(str(exc), status_code=410 if isinstance(exc, ExpiredUnsubscribeToken) else 403)
        return _problem(exc, locale)
    now = datetime.now(UTC)
    if one_click:
        changes = {claims.channel: False}
        submission = one_click_submission(token, now)
    else:
        changes = choices_from_form(fields, claims)
        submission = f"form:{first(fields, 'submission') or secrets.token_urlsafe(12)}"
    await record_consent_changes(deps_of(request), consent_events(claims, changes, submission, now))
    if one_click:
        return PlainTextResponse("unsubscribed")
    texts = TEXTS.for_locale(locale)
    return PAGES.response(
        "preferences_done.html",
        lang=locale,
        t=texts,
        stopped=", ".join(texts[channel] for channel, granted in changes.items() if not granted),
        allowed=", ".join(texts[channel] for channel, granted in changes.items() if granted),
    )
