"""Managed API keys: created, listed, rotated and revoked at run time, stored hashed in schema `auth`.

A key is `rk_<key id>_<secret>`. Only the SHA-256 of the secret is stored; the key id finds the row, and the digests
are compared in constant time. Every process keeps the table of live keys in memory and reloads it when it is older
than `RETAIN_API_KEY_CACHE_TTL_S`, so a revoked key stops working everywhere within that time, without a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.auth_schema.tables import api_keys

log = logging.getLogger(__name__)

PREFIX = "rk_"


@dataclass(frozen=True)
class ManagedKey:
    key_id: str
    secret_sha256: str
    source: str
    scopes: frozenset[str]
    rate_limit_per_s: float | None
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class KeyInfo:
    """What the admin API and `retain keys list` show: everything but the secret's digest."""

    key_id: str
    source: str
    scopes: list[str]
    rate_limit_per_s: float | None
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class IssuedKey:
    info: KeyInfo
    token: str  # shown once, never stored


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a managed key, None for anything else (a bootstrap key from the environment)."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


def _new_token() -> tuple[str, str, str]:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}{key_id}_{secret}", digest(secret)


class KeyStore:
    """The live (not revoked) managed keys of one process, reloaded from the database when stale."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ttl_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._keys: dict[str, ManagedKey] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    async def find(self, key_id: str) -> ManagedKey | None:
        now = self.monotonic()
        if self._loaded_at is None or now - self._loaded_at >= self.ttl_s:
            await self._reload(now)
        key = self._keys.get(key_id)
        if key is None:
            # Perhaps created a moment ago on another service: one primary-key lookup, not a reload of the table.
            key = await self._load_one(key_id)
        return key

    async def _load_one(self, key_id: str) -> ManagedKey | None:
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                )
            ).one_or_none()
        if row is None:
            return None
        key = self._keys[key_id] = _managed(row)
        return key

    async def _reload(self, asked_at: float) -> None:
        async with self._lock:
            if self._loaded_at is not None and self._loaded_at >= asked_at:
                return  # another request reloaded while this one waited
            try:
                async with self.sessions() as session:
                    rows = (await session.execute(select(api_keys).where(api_keys.c.revoked_at.is_(None)))).all()
            except Exception:
                if self._loaded_at is None:
                    raise
                # The database is down: the keys as last read keep working rather than locking everyone out.
                log.warning("cannot reload the API keys; using the ones last read", exc_info=True)
                return
            self._keys = {row.key_id: _managed(row) for row in rows}
            self._loaded_at = self.monotonic()


def _managed(row: Any) -> ManagedKey:
    return ManagedKey(
        key_id=row.key_id,
        secret_sha256=row.secret_sha256,
        source=row.source,
        scopes=frozenset(row.scopes),
        rate_limit_per_s=row.rate_limit_per_s,
        expires_at=row.expires_at,
    )


def matches(key: ManagedKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_sha256.encode(), digest(secret).encode())


def _info(row: object) -> KeyInfo:
    return KeyInfo(
        key_id=row.key_id,  # type: ignore[attr-defined]
        source=row.source,  # type: ignore[attr-defined]
        scopes=list(row.scopes),  # type: ignore[attr-defined]
        rate_limit_per_s=row.rate_limit_per_s,  # type: ignore[attr-defined]
        expires_at=row.expires_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
        replaced_by=row.replaced_by,  # type: ignore[attr-defined]
        created_by=row.created_by,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
    )


async def create_key(
    session: AsyncSession,
    *,
    source: str,
    scopes: Sequence[str],
    created_by: str,
    expires_at: datetime | None = None,
    rate_limit_per_s: float | None = None,
) -> IssuedKey:
    key_id, token, secret_digest = _new_token()
    row = (
        await session.execute(
            api_keys.insert()
            .values(
                key_id=key_id,
                secret_sha256=secret_digest,
                source=source,
                scopes=sorted(set(scopes)),
                rate_limit_per_s=rate_limit_per_s,
                expires_at=expires_at,
                created_by=created_by,
            )
            .returning(api_keys)
        )
    ).one()
    return IssuedKey(_info(row), token)


async def list_keys(session: AsyncSession, *, include_revoked: bool = False) -> list[KeyInfo]:
    query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [_info(row) for row in (await session.execute(query)).all()]


async def revoke_key(session: AsyncSession, key_id: str, *, at: datetime | None = None) -> KeyInfo | None:
    """None when there is no such key; revoking a revoked key keeps its first revocation time."""
    now = at or datetime.now(UTC)
    await session.execute(
        update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    row = (await session.execute(select(api_keys).where(api_keys.c.key_id == key_id))).one_or_none()
    return None if row is None else _info(row)


async def rotate_key(
    session: AsyncSession, key_id: str, *, created_by: str, grace: timedelta = timedelta(0)
) -> IssuedKey | None:
    """A new key with the old one's source, scopes, limit and expiry; the old one is revoked, or with a grace
    period expires then (callers switch over meanwhile). None when the key is unknown or already revoked."""
    old = (
        await session.execute(
            select(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).with_for_update()
        )
    ).one_or_none()
    if old is None:
        return None
    issued = await create_key(
        session,
        source=old.source,
        scopes=old.scopes,
        created_by=created_by,
        expires_at=old.expires_at,
        rate_limit_per_s=old.rate_limit_per_s,
    )
    now = datetime.now(UTC)
    values: dict[str, object] = {"replaced_by": issued.info.key_id}
    if grace > timedelta(0):
        ends = now + grace
        values["expires_at"] = ends if old.expires_at is None else min(old.expires_at, ends)
    else:
        values["revoked_at"] = now
    await session.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(**values))
    return issued
