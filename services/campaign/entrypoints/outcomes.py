"""A campaign's sends and skips: what the console's campaign page shows next to the A/B report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, require_scope
from libs.common.problems import Problem
from libs.common.runtime import db_session
from services.campaign.handlers.outcomes import campaign_outcomes as outcomes_of

router = APIRouter(prefix="/v1")
Session = Annotated[AsyncSession, Depends(db_session)]
# Campaign reports are marketing's, like the campaigns themselves.
Writer = Annotated[Principal, Depends(require_scope("campaigns:write"))]


@router.get("/campaigns/{campaign_id}/outcomes", tags=["campaigns"], summary="Actions by kind, status and skip reason")
async def campaign_outcomes(campaign_id: str, session: Session, _: Writer) -> dict[str, Any]:
    outcomes = await outcomes_of(session, campaign_id)
    if outcomes is None:
        raise Problem(404, "Not Found", f"no campaign {campaign_id!r}")
    return outcomes
