"""Customer facts from scoring and profile events, ids that profile joined to a customer, and `customer.erased`.

Every handler of feedback's consumers asks `erasure_guard` first: an event about an erased customer from before
the erasure (a score that overtook it on another topic, a late ticket, a replay) changes nothing.

Scores and segment changes are handled a consumer batch at a time: one lock statement, one alias and erasure read
and one write per table for the whole batch, with the effect of handling its events one by one in their order.
Joins and erasures change what the events after them resolve to, so they are handled one by one, between runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from libs.common.aliases import joined_ids
from libs.common.consumer import HandlerContext
from libs.common.contracts import ProfileUpdated, ScoreChanged, ThresholdCrossed, parse
from libs.common.envelope import CloudEvent
from libs.common.erasures import ERASED_EVENT_TYPE
from services.feedback.adapters import customers
from services.feedback.adapters.tables import aliases, erasure_guard

log = logging.getLogger(__name__)

TIER_CROSSINGS = frozenset({"tier_up", "tier_down"})


def _tier_of(event: CloudEvent) -> str | None:
    """`score.changed` carries the tier; a `threshold.crossed` tier crossing carries it as `new`."""
    tier: str | float | None = None
    if event.type == "score.changed":
        tier = parse(event, ScoreChanged).tier
    elif event.type == "threshold.crossed":
        crossing = parse(event, ThresholdCrossed)
        if crossing.kind in TIER_CROSSINGS:
            tier = crossing.new
    return tier if isinstance(tier, str) and tier else None


async def on_score_changes(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    # The newest event time wins, the later one of a tie, as the stored row's own guard decides one by one.
    newest: dict[str, tuple[str, datetime]] = {}
    for event in await erasure_guard.admitted(ctx.session, events):
        tier = _tier_of(event)
        if tier is not None and (event.subject not in newest or newest[event.subject][1] <= event.time):
            newest[event.subject] = (tier, event.time)
    await customers.set_tiers(ctx.session, newest)


async def on_score_change(ctx: HandlerContext, event: CloudEvent) -> None:
    await on_score_changes(ctx, [event])


def _changes_identity(event: CloudEvent) -> bool:
    return event.type == ERASED_EVENT_TYPE or joined_ids(event) is not None


async def on_profile_changes(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    run: list[CloudEvent] = []
    for event in events:
        if not _changes_identity(event):
            run.append(event)
            continue
        await _change_segments(ctx, run)
        run = []
        await _join_or_erase(ctx, event)
    await _change_segments(ctx, run)


async def on_profile_change(ctx: HandlerContext, event: CloudEvent) -> None:
    await on_profile_changes(ctx, [event])


async def _change_segments(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    changes: list[tuple[str, list[str], list[str], datetime]] = []
    for event in await erasure_guard.admitted(ctx.session, events):
        if event.type != "profile.updated":
            continue
        profile = parse(event, ProfileUpdated)
        entered, left = profile.segments_entered, profile.segments_left
        if entered or left:
            changes.append((event.subject, entered, left, event.time))
    if not changes:
        return
    segments = await customers.segments_for_update(ctx.session, {change[0] for change in changes})
    changed_at: dict[str, datetime] = {}
    for customer_id, entered, left, at in changes:
        segments[customer_id] = (segments.get(customer_id, set()) | set(entered)) - set(left)
        changed_at[customer_id] = at
    await customers.set_segments(
        ctx.session, {customer_id: (sorted(segments[customer_id]), at) for customer_id, at in changed_at.items()}
    )


async def _join_or_erase(ctx: HandlerContext, event: CloudEvent) -> None:
    if not await erasure_guard.admits(ctx.session, event):
        return
    joined = joined_ids(event)
    if joined is not None:
        from_id, into_id = joined
        into_id = await aliases.join(ctx.session, from_id, into_id)
        if from_id != into_id:
            await customers.move_customer(ctx.session, from_id, into_id)
        return
    erased_ids = await erasure_guard.lock_erased(ctx.session, event)
    deleted = await customers.erase(ctx.session, erased_ids)
    log.info("customer erased", extra={"deleted": deleted})
