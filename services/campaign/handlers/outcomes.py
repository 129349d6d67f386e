"""A campaign's sends and skips: what the console's campaign pages show next to the A/B report."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.campaign.adapters.outcomes import campaign_exists, outcome_counts


async def campaign_outcomes(session: AsyncSession, campaign_id: str) -> dict[str, Any] | None:
    """Counts by status, what was not sent by reason, and the (kind, status, reason) rows; None: no such campaign."""
    if not await campaign_exists(session, campaign_id):
        return None
    rows = await outcome_counts(session, campaign_id)
    by_status: dict[str, int] = {}
    not_sent: dict[str, int] = {}
    for _kind, status, reason, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        if status in ("skipped", "failed"):
            key = reason or "unknown"
            not_sent[key] = not_sent.get(key, 0) + count
    return {
        "campaign_id": campaign_id,
        "by_status": by_status,
        "not_sent_by_reason": dict(sorted(not_sent.items(), key=lambda item: -item[1])),
        "rows": [{"kind": k, "status": s, "reason": r, "count": n} for k, s, r, n in rows],
    }
