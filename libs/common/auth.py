"""API keys with scopes: `Authorization: Bearer <key>`; `admin` implies every scope.

Two kinds of key: managed keys (`libs.common.apikeys`, stored hashed in schema `auth`, revocable at run time) and
the bootstrap keys of `RETAIN_API_KEYS`, which exist to create the first managed admin key.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from libs.common import apikeys
from libs.common.problems import Problem
from libs.common.ratelimit import TokenBucket, retry_after_header
from libs.common.settings import ApiKey, Scope


@dataclass(frozen=True)
class Principal:
    key_id: str
    source: str
    scopes: frozenset[str]
    rate_limit_per_s: float | None = None
    # What a rate limiter counts by: the key id of a managed key, the key itself for a bootstrap key.
    bucket: str = field(default="", repr=False)

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _presented(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise _unauthorized("Authorization: Bearer <api-key> is required")
    return authorization[7:].strip()


def _bootstrap(api_keys: dict[str, ApiKey], presented: str) -> Principal | None:
    for key, spec in api_keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            # Only a short prefix identifies the key in logs and metrics; the key itself is a secret.
            return Principal(
                key_id=key[:6],
                source=spec.source,
                scopes=frozenset(spec.scopes),
                rate_limit_per_s=spec.rate_limit_per_s,
                bucket=key,
            )
    return None


def authenticate(api_keys: dict[str, ApiKey], authorization: str | None) -> Principal:
    """Bootstrap keys only (for a process without a database)."""
    principal = _bootstrap(api_keys, _presented(authorization))
    if principal is None:
        raise _unauthorized("unknown API key")
    return principal


async def authenticate_request(request: Request) -> Principal:
    """A bootstrap key, or a managed key that is neither revoked nor expired."""
    presented = _presented(request.headers.get("authorization"))
    principal = _bootstrap(request.app.state.settings.api_keys, presented)
    if principal is not None:
        return principal
    parts = apikeys.split(presented)
    if parts is None:
        raise _unauthorized("unknown API key")
    key_id, secret = parts
    store: apikeys.KeyStore = request.app.state.runtime.keys
    key = await store.find(key_id)
    if key is None or not apikeys.matches(key, secret):
        raise _unauthorized("unknown or revoked API key")
    if key.expired(datetime.now(UTC)):
        raise _unauthorized("this API key has expired")
    return Principal(
        key_id=key.key_id, source=key.source, scopes=key.scopes, rate_limit_per_s=key.rate_limit_per_s, bucket=key_id
    )


class RateLimiter:
    """Per-key token buckets of one process: each of `workers` processes lets through its share of the rate."""

    def __init__(self, workers: int, burst_s: float = 1.0) -> None:
        self.workers = workers
        self.burst_s = burst_s
        self.buckets: dict[str, TokenBucket] = {}

    def check(self, principal: Principal, rate_per_s: float | None = None) -> None:
        rate = principal.rate_limit_per_s or rate_per_s
        if not rate:
            return
        now = time.monotonic()
        bucket = self.buckets.get(principal.bucket)
        if bucket is None or bucket.rate_per_s != rate / self.workers:
            bucket = self.buckets[principal.bucket] = TokenBucket.full(rate / self.workers, self.burst_s, now)
        wait = bucket.take(now)
        if wait > 0:
            raise Problem(
                429,
                "Too Many Requests",
                f"rate limit of {rate:g} requests/s for this API key exceeded",
                headers={"Retry-After": retry_after_header(wait)},
            )


def require_scope(scope: Scope | None) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency: `principal: Principal = Depends(require_scope("customers:read"))`; None: any valid key."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate_request(request)
        if scope is not None and not principal.has(scope):
            raise Problem(403, "Forbidden", f"this API key lacks the '{scope}' scope", missing_scope=scope)
        limiter: RateLimiter = request.app.state.rate_limiter
        limiter.check(principal)
        return principal

    return dependency
