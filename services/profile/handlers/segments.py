"""Recomputing a segment's membership over every stored profile after the segment changes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.envelope import CloudEvent
from libs.common.outbox import Outbox
from libs.common.topics import PROFILE_CHANGES
from services.profile.adapters import profiles
from services.profile.domain import Condition, ProfileState, evaluate, flat_view
from services.profile.handlers.profiles import Cause, profile_updated
from services.profile.handlers.sealing import Vault, document_has_personal

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
    vault: Vault,
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
        candidates = await profiles.segment_candidates(session, segment_id, after, CHUNK)
        if not candidates:
            return outcome
        after = candidates[-1].customer_id
        documents = await vault.open_texts({candidate.customer_id: candidate.state for candidate in candidates})
        chunk = _evaluate(candidates, documents, segment_id, condition, cause, clock)
        keys = await vault.keys_for(
            [event.subject for event in chunk.events if document_has_personal(documents[event.subject])]
        )
        for event in chunk.events:
            vault.seal_announcement(event, keys.get(event.subject))
        await profiles.add_segment_members(session, segment_id, chunk.entered)
        await profiles.remove_segment_members(session, segment_id, chunk.left)
        await outbox.add(session, PROFILE_CHANGES, *chunk.events)
        outcome.members += chunk.members
        outcome.entered += len(chunk.entered)
        outcome.left += len(chunk.left)


@dataclass
class _Chunk:
    members: int = 0
    entered: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)


def _evaluate(
    candidates: Sequence[profiles.SegmentCandidate],
    documents: Mapping[str, dict[str, Any]],
    segment_id: str,
    condition: Condition | None,
    cause: Cause,
    clock: Callable[[datetime | None], datetime],
) -> _Chunk:
    """Who of `candidates` enters or leaves the segment, with one `profile.updated` each."""
    chunk = _Chunk()
    for candidate in candidates:
        # Deleting a segment only needs its members' states (for the metrics of the leave events).
        if condition is None and not candidate.member:
            continue
        state = ProfileState.from_dict(documents[candidate.customer_id])
        as_of = clock(state.last_seen)
        now_member = condition is not None and evaluate(condition, flat_view(state, as_of))
        chunk.members += now_member
        if now_member == candidate.member:
            continue
        (chunk.entered if now_member else chunk.left).append(candidate.customer_id)
        chunk.events.append(
            profile_updated(
                state,
                cause,
                ["segments"],
                as_of,
                entered=[segment_id] if now_member else [],
                left=[] if now_member else [segment_id],
            )
        )
    return chunk
