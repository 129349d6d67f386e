"""Signed unsubscribe links: campaign puts one in every marketing message, ingest's preference page checks it.

Token = ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload))``, unpadded; the payload names the
customer, the channel the message went out on, the campaign and an expiry. Nothing inside an unsigned payload is
believed. Unlike a survey link the token is not single use: a customer may come back and change their mind, and
a withdrawal repeated is harmless.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args
from urllib.parse import quote

from pydantic import SecretStr

from libs.common import signed_tokens
from libs.common.events import Channel

log = logging.getLogger(__name__)
TOKEN_VERSION = 1
PAGE_PATH = "/unsubscribe"
# Every channel a consent can be recorded for: "all marketing" withdraws each of them.
CHANNELS: tuple[str, ...] = get_args(Channel)


class UnsubscribeTokenError(ValueError):
    """Not a link we issued, altered, or expired."""


class ExpiredUnsubscribeToken(UnsubscribeTokenError):
    pass


@dataclass(frozen=True, slots=True)
class UnsubscribeClaims:
    customer_id: str
    channel: str
    campaign_id: str
    expires_at: datetime


def secret_of(configured: SecretStr | None) -> str:
    """The configured secret; without one, a random key for this process (links then fail everywhere else)."""
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    log.warning("RETAIN_UNSUBSCRIBE_TOKEN_SECRET is not set: unsubscribe links work only within this process")
    return secrets.token_urlsafe(32)


def issue_unsubscribe_token(secret: str, customer_id: str, channel: str, campaign_id: str, expires_at: datetime) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    payload = {"v": TOKEN_VERSION, "c": customer_id, "ch": channel, "m": campaign_id, "e": int(expires_at.timestamp())}
    return signed_tokens.sign_token(secret, payload)


def verify_unsubscribe_token(secret: str, token: str, now: datetime) -> UnsubscribeClaims:
    try:
        claims = _claims_of(signed_tokens.open_token(secret, token, TOKEN_VERSION))
    except signed_tokens.SignedTokenError as exc:
        raise UnsubscribeTokenError(str(exc)) from exc
    if now >= claims.expires_at:
        raise ExpiredUnsubscribeToken(f"token expired at {claims.expires_at.isoformat()}")
    return claims


def _claims_of(data: dict[str, Any]) -> UnsubscribeClaims:
    customer_id, channel, campaign_id = data.get("c"), data.get("ch"), data.get("m")
    if not (isinstance(customer_id, str) and isinstance(channel, str) and isinstance(campaign_id, str)):
        raise signed_tokens.MalformedToken("token payload is missing fields")
    if channel not in CHANNELS:
        raise signed_tokens.MalformedToken("token payload has a bad channel")
    return UnsubscribeClaims(customer_id, channel, campaign_id, signed_tokens.expiry_of(data.get("e")))


def unsubscribe_url(base_url: str, token: str, locale: str | None = None) -> str:
    url = f"{base_url.rstrip('/')}{PAGE_PATH}?token={quote(token)}"
    return url + (f"&lang={quote(locale)}" if locale else "")
