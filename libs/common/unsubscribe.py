"""Signed unsubscribe links: campaign puts one in every marketing message, ingest's preference page checks it.

Token = ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload))``, unpadded; the payload names the
customer, the channel the message went out on, the campaign and an expiry. Nothing inside an unsigned payload is
believed. Unlike a survey link the token is not single use: a customer may come back and change their mind, and
a withdrawal repeated is harmless.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args
from urllib.parse import quote

from pydantic import SecretStr

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


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise UnsubscribeTokenError("token is not valid base64url") from exc


def _sign(secret: str, payload_b64: str) -> bytes:
    if not secret:
        raise ValueError("unsubscribe token secret must not be empty")  # an empty key signs for anyone
    return hmac.new(secret.encode("utf-8"), payload_b64.encode("ascii"), hashlib.sha256).digest()


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
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    payload_b64 = _b64encode(body.encode("utf-8"))
    return f"{payload_b64}.{_b64encode(_sign(secret, payload_b64))}"


def verify_unsubscribe_token(secret: str, token: str, now: datetime) -> UnsubscribeClaims:
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 2 or not all(parts):
        raise UnsubscribeTokenError("token must have two dot-separated parts")
    payload_b64, signature_b64 = parts
    if not payload_b64.isascii():
        raise UnsubscribeTokenError("token is not ASCII")
    if not hmac.compare_digest(_b64decode(signature_b64), _sign(secret, payload_b64)):
        raise UnsubscribeTokenError("token signature does not match")
    try:
        data = json.loads(_b64decode(payload_b64).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsubscribeTokenError("token payload is not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        raise UnsubscribeTokenError("unsupported token payload")
    customer_id, channel, campaign_id, expires = data.get("c"), data.get("ch"), data.get("m"), data.get("e")
    if not (isinstance(customer_id, str) and isinstance(channel, str) and isinstance(campaign_id, str)):
        raise UnsubscribeTokenError("token payload is missing fields")
    if channel not in CHANNELS or isinstance(expires, bool) or not isinstance(expires, int):
        raise UnsubscribeTokenError("token payload has a bad channel or expiry")
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now >= expires_at:
        raise ExpiredUnsubscribeToken(f"token expired at {expires_at.isoformat()}")
    return UnsubscribeClaims(customer_id, channel, campaign_id, expires_at)


def unsubscribe_url(base_url: str, token: str, locale: str | None = None) -> str:
    url = f"{base_url.rstrip('/')}{PAGE_PATH}?token={quote(token)}"
    return url + (f"&lang={quote(locale)}" if locale else "")
