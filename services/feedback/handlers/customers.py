"""Customer facts from scoring and profile events, ids that profile joined to a customer, and `customer.erased`.

Every handler of feedback's consumers asks `erasure_guard` first: an event about an erased customer from before
the erasure (a score that overtook it on another topic, a late ticket, a replay) changes nothing.
"""

from __future__ import annotations

import logging

from libs.common.aliases import joined_ids
from libs.common.consumer import HandlerContext
from libs.common.contracts import ProfileUpdated, ScoreChanged, ThresholdCrossed, parse
from libs.common.envelope import CloudEvent
from services.feedback.adapters import customers_repo
from services.feedback.adapters.tables import aliases, erasure_guard

log = logging.getLogger(__name__)

TIER_CROSSINGS = frozenset({"tier_up", "tier_down"})


async def on_score_change(ctx: HandlerContext, event: CloudEvent) -> None:
    """`score.changed` carries the tier; a `threshold.crossed` tier crossing carries it as `new`."""
    if not await erasure_guard.admits(ctx.session, event):
        return
    tier: str | float | None = None
    if event.type == "score.changed":
        tier = parse(event, ScoreChanged).tier
    elif event.type == "threshold.crossed":
        crossing = parse(event, ThresholdCrossed)
        if crossing.kind in TIER_CROSSINGS:
            tier = crossing.new
    if isinstance(tier, str) and tier:
        await customers_repo.set_tier(ctx.session, event.subject, tier, event.time)


async def on_profile_change(ctx: HandlerContext, event: CloudEvent) -> None:
    if not await erasure_guard.admits(ctx.session, event):
        return
    joined = joined_ids(event)
    if joined is not None:
        from_id, into_id = joined
        into_id = await aliases.join(ctx.session, from_id, into_id)
        if from_id != into_id:
            await customers_repo.move_customer(ctx.session, from_id, into_id)
        return
    if event.type == "customer.erased":
        erased_ids = await erasure_guard.lock_erased(ctx.session, event)
        deleted = await customers_repo.erase(ctx.session, erased_ids)
        log.info("customer erased", extra={"deleted": deleted})
        return
    if event.type == "profile.updated":
        profile = parse(event, ProfileUpdated)
        entered, left = profile.segments_entered, profile.segments_left
        if entered or left:
            await customers_repo.change_segments(ctx.session, event.subject, entered, left, event.time)
