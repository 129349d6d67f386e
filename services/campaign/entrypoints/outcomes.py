"""A campaign's sends and skips: what the console's campaign page shows next to the A/B report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.campaign.adapters.outcomes import outcome_counts
from services.campaign.entrypoints.api import Session, Writer, _campaign_row

router = APIRouter(prefix="/v1")


@router.get("/campaigns/{campaign_id}/outcomes", tags=["campaigns"], summary="Actions by kind, status and skip reason")
async def campaign_outcomes(campaign_id: str, session: Session, _: Writer) -> dict[str, Any]:
    await _campaign_row(session, campaign_id)
    rows = await outcome_counts(session, campaign_id)
    by_status: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for _kind, status, reason, count in rows:
        by_status[status] = by_status.get(status, 0) + count
        if status in ("skipped", "failed"):
            key = reason or "unknown"
            skipped[key] = skipped.get(key, 0) + count
    return {
        "campaign_id": campaign_id,
        "by_status": by_status,
        "not_sent_by_reason": dict(sorted(skipped.items(), key=lambda item: -item[1])),
        "rows": [{"kind": k, "status": s, "reason": r, "count": n} for k, s, r, n in rows],
    }
