"""A campaign's sends and skips: what the console's campaign page shows next to the A/B report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.campaign.adapters.outcomes import campaign_exists, outcome_counts

router = APIRouter(prefix="/v1")
Session = Annotated[AsyncSession, Depends(db_session)]
# Campaign reports are marketing's, like the campaigns themselves.
Writer = Annotated[Principal, Depends(require_scope("campaigns:write"))]


@router.get("/campaigns/{campaign_id}/outcomes", tags=["campaigns"], summary="Actions by kind, status and skip reason")
async def campaign_outcomes(campaign_id: str, session: Session, _: Writer) -> dict[str, Any]:
    if not await campaign_exists(session, campaign_id):
        raise Problem(404, "Not Found", f"no campaign {campaign_id!r}")
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
