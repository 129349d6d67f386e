"""Signed, per-customer survey links.

Token = ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload))``,
unpadded. The payload carries survey id, customer id, expiry (epoch seconds)
and a random nonce, so two links for the same customer differ and the
service can refuse a second answer by storing the nonce under a unique key.

Checks run cheapest-to-trust first: shape, then signature (nothing inside an
unsigned payload is believed), then expiry, then survey.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from services.feedback.domain.errors import FeedbackDomainError

TOKEN_VERSION = 1


class TokenError(FeedbackDomainError):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="token")


class MalformedToken(TokenError):
    """Not a token we could have issued (bad shape, encoding, or payload)."""


class ForgedToken(TokenError):
    """Well-formed but the signature does not match: tampered or wrong secret."""


class ExpiredToken(TokenError):
    pass


class WrongSurvey(TokenError):
    """Genuine token, but for a different survey than the one being answered."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    survey_id: str
    customer_id: str
    expires_at: datetime
    nonce: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("token is not valid base64url") from exc


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        # An empty key would make every token trivially forgeable.
        raise ValueError("survey token secret must not be empty")
    return key


def _sign(secret: str | bytes, payload_b64: str) -> bytes:
    return hmac.new(_key(secret), payload_b64.encode("ascii"), hashlib.sha256).digest()


def issue_token(
    secret: str | bytes,
    survey_id: str,
    customer_id: str,
    expires_at: datetime,
    *,
    nonce: str | None = None,
) -> str:
    """``nonce`` is only for reproducible tests; leave it None in production."""
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    payload = {
        "v": TOKEN_VERSION,
        "s": survey_id,
        "c": customer_id,
        "e": int(expires_at.timestamp()),
        "n": nonce if nonce is not None else secrets.token_urlsafe(16),
    }
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    payload_b64 = _b64encode(body.encode("utf-8"))
    return f"{payload_b64}.{_b64encode(_sign(secret, payload_b64))}"


def verify_token(
    secret: str | bytes,
    token: str,
    now: datetime,
    expected_survey_id: str | None = None,
) -> TokenClaims:
    """Claims of a genuine, unexpired token; raises a ``TokenError`` subclass otherwise.

    The token expires at ``expires_at`` exactly (``now >= expires_at`` fails).
    """
    if not isinstance(token, str) or token.count(".") != 1:
        raise MalformedToken("token must have exactly two dot-separated parts")
    payload_b64, sig_b64 = token.split(".")
    if not payload_b64 or not sig_b64:
        raise MalformedToken("token has an empty part")
    try:
        payload_b64.encode("ascii")
    except UnicodeEncodeError as exc:
        raise MalformedToken("token is not ASCII") from exc
    signature = _b64decode(sig_b64)
    payload_raw = _b64decode(payload_b64)
    if not hmac.compare_digest(signature, _sign(secret, payload_b64)):
        raise ForgedToken("token signature does not match")
    claims = _parse_payload(payload_raw)
    if now >= claims.expires_at:
        raise ExpiredToken(f"token expired at {claims.expires_at.isoformat()}")
    if expected_survey_id is not None and claims.survey_id != expected_survey_id:
        raise WrongSurvey(f"token is for survey {claims.survey_id}, not {expected_survey_id}")
    return claims


def _parse_payload(raw: bytes) -> TokenClaims:
    # Only reachable with a valid signature, so a failure here means a bug or a
    # leaked secret - still reported as malformed rather than crashing.
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedToken("token payload is not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        raise MalformedToken("unsupported token payload")
    survey_id, customer_id, expires, nonce = data.get("s"), data.get("c"), data.get("e"), data.get("n")
    if not (isinstance(survey_id, str) and isinstance(customer_id, str) and isinstance(nonce, str)):
        raise MalformedToken("token payload is missing fields")
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise MalformedToken("token expiry is not an integer")
    try:
        expires_at = datetime.fromtimestamp(expires, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedToken("token expiry out of range") from exc
    return TokenClaims(survey_id, customer_id, expires_at, nonce)
