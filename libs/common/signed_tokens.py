"""Signed tokens for the links we hand to customers (survey answers, unsubscribe pages).

Token = ``base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload))``, unpadded. Checks run
cheapest-to-trust first: shape, then signature (nothing inside an unsigned payload is believed), then the payload's
JSON and version. What a payload holds, and what its expiry means, is the caller's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any


class SignedTokenError(ValueError):
    """Not a token we could have issued."""


class MalformedToken(SignedTokenError):
    """Bad shape, encoding or payload."""


class ForgedToken(SignedTokenError):
    """Well-formed but the signature does not match: tampered, or signed with another secret."""


def sign_token(secret: str | bytes, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    payload_b64 = _b64encode(body.encode("utf-8"))
    return f"{payload_b64}.{_b64encode(_sign(secret, payload_b64))}"


def open_token(secret: str | bytes, token: object, version: int) -> dict[str, Any]:
    """The payload of a token we signed, whose `v` is `version`; raises a `SignedTokenError` otherwise."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise MalformedToken("token must have exactly two dot-separated parts")
    payload_b64, signature_b64 = token.split(".")
    if not payload_b64 or not signature_b64:
        raise MalformedToken("token has an empty part")
    if not payload_b64.isascii():
        raise MalformedToken("token is not ASCII")
    signature, payload_raw = _b64decode(signature_b64), _b64decode(payload_b64)
    if not hmac.compare_digest(signature, _sign(secret, payload_b64)):
        raise ForgedToken("token signature does not match")
    # Past the signature a failure means a bug or a leaked secret: still answered as malformed, never a crash.
    try:
        payload = json.loads(payload_raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedToken("token payload is not JSON") from exc
    if not isinstance(payload, dict) or payload.get("v") != version:
        raise MalformedToken("unsupported token payload")
    return payload


def expiry_of(value: object) -> datetime:
    """A payload's expiry, epoch seconds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedToken("token expiry is not an integer")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedToken("token expiry out of range") from exc


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken("token is not valid base64url") from exc


def _sign(secret: str | bytes, payload_b64: str) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise ValueError("a token secret must not be empty")  # an empty key signs for anyone
    return hmac.new(key, payload_b64.encode("ascii"), hashlib.sha256).digest()
