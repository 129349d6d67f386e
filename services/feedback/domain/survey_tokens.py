"""Signed, per-customer survey links (`libs.common.signed_tokens`).

The payload carries survey id, customer id, expiry (epoch seconds) and a random nonce, so two links for the same
customer differ and the service can refuse a second answer by storing the nonce under a unique key. Checks run
cheapest-to-trust first: shape, then signature, then expiry, then survey.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from libs.common import signed_tokens
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
    return signed_tokens.sign_token(secret, payload)


def verify_token(
    secret: str | bytes,
    token: str,
    now: datetime,
    expected_survey_id: str | None = None,
) -> TokenClaims:
    """Claims of a genuine, unexpired token; raises a ``TokenError`` subclass otherwise.

    The token expires at ``expires_at`` exactly (``now >= expires_at`` fails).
    """
    try:
        claims = _claims_of(signed_tokens.open_token(secret, token, TOKEN_VERSION))
    except signed_tokens.ForgedToken as exc:
        raise ForgedToken(str(exc)) from exc
    except signed_tokens.SignedTokenError as exc:
        raise MalformedToken(str(exc)) from exc
    if now >= claims.expires_at:
        raise ExpiredToken(f"token expired at {claims.expires_at.isoformat()}")
    if expected_survey_id is not None and claims.survey_id != expected_survey_id:
        raise WrongSurvey(f"token is for survey {claims.survey_id}, not {expected_survey_id}")
    return claims


def _claims_of(data: dict[str, Any]) -> TokenClaims:
    survey_id, customer_id, nonce = data.get("s"), data.get("c"), data.get("n")
    if not (isinstance(survey_id, str) and isinstance(customer_id, str) and isinstance(nonce, str)):
        raise signed_tokens.MalformedToken("token payload is missing fields")
    return TokenClaims(survey_id, customer_id, signed_tokens.expiry_of(data.get("e")), nonce)
