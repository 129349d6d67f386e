"""API keys with scopes: `Authorization: Bearer <key>`; `admin` implies every scope."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from libs.common.problems import Problem
from libs.common.settings import ApiKey, Scope


@dataclass(frozen=True)
class Principal:
    key_id: str
    source: str
    scopes: frozenset[str]

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def authenticate(api_keys: dict[str, ApiKey], authorization: str | None) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Problem(
            401, "Unauthorized", "Authorization: Bearer <api-key> is required", headers={"WWW-Authenticate": "Bearer"}
        )
    presented = authorization[7:].strip()
    for key, spec in api_keys.items():
        if hmac.compare_digest(key.encode(), presented.encode()):
            # Only a short prefix identifies the key in logs and metrics; the key itself is a secret.
            return Principal(key_id=key[:6], source=spec.source, scopes=frozenset(spec.scopes))
    raise Problem(401, "Unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})


def require_scope(scope: Scope) -> Callable[[Request], Awaitable[Principal]]:
    """FastAPI dependency: `principal: Principal = Depends(require_scope("customers:read"))`."""

    async def dependency(request: Request) -> Principal:
        principal = authenticate(request.app.state.settings.api_keys, request.headers.get("authorization"))
        if not principal.has(scope):
            raise Problem(403, "Forbidden", f"this API key lacks the '{scope}' scope", missing_scope=scope)
        return principal

    return dependency
