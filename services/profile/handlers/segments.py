"""Recomputing a segment's membership over every stored profile after the segment changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.envelope import CloudEvent
from libs.common.outbox import Outbox
from libs.common.topics import PROFILE_CHANGES
from services.profile.adapters.tables import SCHEMA
from services.profile.domain import Condition, ProfileState, evaluate, flat_view
from services.profile.handlers.profiles import Cause, profile_updated

S = SCHEMA
# Profiles parsed and evaluated per round trip: bounded memory whatever the customer base.
CHUNK = 1000


@dataclass
class Recomputed:
    members: int = 0
    entered: int = 0
    left: int = 0


async def recompute_segment(
    session: AsyncSession,
    outbox: Outbox,
    segment_id: str,
    condition: Condition | None,
    cause: Cause,
    clock: Callable[[datetime | None], datetime],
) -> Recomputed:
    """Walks all profiles in key order; `condition` None (segment deleted) makes every member leave.

    Runs in the caller's transaction, so the segment change, the membership rows and the enter/leave events
    commit together. Profiles are read without locks: a concurrent consumer batch re-evaluates its own customers
    against the definition it loaded, and the next change of a customer settles any overlap.
    """
    outcome = Recomputed()
    after = ""
    while True:
        rows = (
            await session.execute(
                text(
                    f"""
                    SELECT c.customer_id, c.state::text AS state, (m.customer_id IS NOT NULL) AS member
                    FROM {S}.customers c
                    LEFT JOIN {S}.segment_members m ON m.segment_id = :segment AND m.customer_id = c.customer_id
                    WHERE c.customer_id > :after ORDER BY c.customer_id LIMIT :limit
                    """
                ),
                {"segment": segment_id, "after": after, "limit": CHUNK},
            )
        ).all()
        if not rows:
            return outcome
        after = rows[-1].customer_id
        # Deleting a segment only needs its members' states (for the metrics of the leave events).
        entered: list[str] = []
        left: list[str] = []
        events: list[CloudEvent] = []
        for row in rows:
            if condition is None and not row.member:
                continue
            state = ProfileState.model_validate_json(row.state)
            as_of = clock(state.last_seen)
            now_member = condition is not None and evaluate(condition, flat_view(state, as_of))
            outcome.members += now_member
            if now_member == row.member:
                continue
            (entered if now_member else left).append(row.customer_id)
            events.append(
                profile_updated(
                    state,
                    cause,
                    ["segments"],
                    as_of,
                    entered=[segment_id] if now_member else [],
                    left=[] if now_member else [segment_id],
                )
            )
        if entered:
            await session.execute(
                text(
                    f"INSERT INTO {S}.segment_members (segment_id, customer_id) "
                    "SELECT :segment, unnest(CAST(:ids AS text[])) ON CONFLICT DO NOTHING"
                ),
                {"segment": segment_id, "ids": entered},
            )
        if left:
            await session.execute(
                text(
                    f"DELETE FROM {S}.segment_members WHERE segment_id = :segment "
                    "AND customer_id = ANY(CAST(:ids AS text[]))"
                ),
                {"segment": segment_id, "ids": left},
            )
        await outbox.add(session, PROFILE_CHANGES, *events)
        outcome.entered += len(entered)
        outcome.left += len(left)
