"""The built-in welcome to the top tier: one coupon per customer, whatever is redelivered."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, derived_event
from libs.common.topics import CAMPAIGN_ACTIONS
from services.campaign.adapters.tables import actions

CAMPAIGN_ID = "builtin-top-tier-welcome"
SOURCE = "retain/campaign"


def idempotency_key(campaign_id: str, customer_id: str, window: str) -> str:
    return hashlib.sha256("\x1f".join((campaign_id, customer_id, window)).encode()).hexdigest()


async def handle_threshold_crossed(ctx: HandlerContext, event: CloudEvent) -> None:
    if event.data.get("kind") != "tier_up" or event.data.get("new") != "high":
        return
    # Once per customer for this campaign: the window is the whole life of the customer.
    key = idempotency_key(CAMPAIGN_ID, event.subject, "lifetime")
    coupon = {"code": f"RTN-{secrets.token_hex(6).upper()}", "kind": "percent", "value": 10}
    inserted = await ctx.session.scalar(
        pg_insert(actions)
        .values(
            idempotency_key=key,
            customer_id=event.subject,
            campaign_id=CAMPAIGN_ID,
            kind="coupon",
            status="issued",
            payload=coupon,
        )
        .on_conflict_do_nothing(index_elements=[actions.c.idempotency_key])
        .returning(actions.c.id)
    )
    if inserted is None:
        return
    await ctx.emit(
        CAMPAIGN_ACTIONS,
        derived_event(
            cause=event,
            source=SOURCE,
            type="coupon.issued",
            subject=event.subject,
            time=event.time,
            data={"campaign_id": CAMPAIGN_ID, **coupon},
        ),
    )
