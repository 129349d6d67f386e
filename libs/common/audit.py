"""The audit trail: who (key id, source, address) did what to whom, when — appended to `auth.audit_log`.

Recorded: every read of a customer's personal data (profile views, searches, exports), every erasure, every change
of an API key or a campaign. Rows hold ids, never personal data (a search records which kind of criterion it used,
not the email or phone searched for). The table refuses UPDATE, DELETE and TRUNCATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.auth_schema.tables import audit_log

# What the trail records, by name (the `action` column).
CUSTOMER_VIEWED = "customer.viewed"
CUSTOMER_SEARCHED = "customer.searched"
CUSTOMER_EXPORTED = "customer.exported"
CUSTOMER_ERASED = "customer.erased"
KEY_CREATED = "key.created"
KEY_ROTATED = "key.rotated"
KEY_REVOKED = "key.revoked"
CAMPAIGN_CHANGED = "campaign.changed"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    occurred_at: datetime
    service: str
    key_id: str
    source: str
    address: str | None
    action: str
    customer_id: str | None
    target: str | None
    details: dict[str, Any]


def address_of(request: Request) -> str | None:
    return request.client.host if request.client else None


async def record(
    request: Request,
    principal: Principal,
    action: str,
    *,
    customer_id: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    session: AsyncSession | None = None,
) -> None:
    """Appends one row. Given `session`, the row commits (or not) with the caller's own change; else in a
    transaction of its own, before the caller answers (an unrecorded read must not be served)."""
    values = {
        "service": request.app.state.settings.service,
        "key_id": principal.key_id,
        "source": principal.source,
        "address": address_of(request),
        "action": action,
        "customer_id": customer_id,
        "target": target,
        "details": details or {},
    }
    if session is not None:
        await session.execute(audit_log.insert().values(**values))
        return
    async with request.app.state.runtime.sessions() as own, own.begin():
        await own.execute(audit_log.insert().values(**values))


async def query(
    session: AsyncSession,
    *,
    customer_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    """Oldest first; `actor` is a key id or a source name."""
    statement = select(audit_log).order_by(audit_log.c.occurred_at, audit_log.c.id).limit(limit)
    if customer_id is not None:
        statement = statement.where(audit_log.c.customer_id == customer_id)
    if actor is not None:
        statement = statement.where((audit_log.c.key_id == actor) | (audit_log.c.source == actor))
    if since is not None:
        statement = statement.where(audit_log.c.occurred_at >= since)
    if until is not None:
        statement = statement.where(audit_log.c.occurred_at < until)
    rows = (await session.execute(statement)).all()
    return [AuditEntry(**row._mapping) for row in rows]
