"""Applies a partition batch of customer events to profiles in one transaction.

Per batch, whatever its size: one query for aliases, one for erasures, one locking load of every affected profile
(by id and by the identities the batch carries), one upsert, one timeline insert, one outbox insert (plus segment
queries when segments exist). Events are folded with the pure domain in arrival order; late events are correct
because the domain is order-independent, and a redelivered event is stopped by the consumer inbox (and the
domain's applied-event list behind it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import as_of
from libs.common.consumer import HandlerContext, PoisonEvent
from libs.common.contracts import ProfileAliased, ProfileMerged, derived
from libs.common.envelope import CloudEvent
from libs.common.events import UPSTREAM_EVENT_TYPES, EventData
from libs.common.topics import PROFILE_CHANGES
from services.profile.adapters import profiles
from services.profile.adapters.profiles import TimelineRow
from services.profile.domain import (
    DecisionKind,
    InvalidEvent,
    apply_in_place,
    identifiers_from_event,
    merge_states,
    parse_payload,
    resolve_identity,
)
from services.profile.handlers.profiles import (
    SOURCE,
    Cause,
    SegmentDefinitions,
    StateCache,
    Working,
    save_and_announce,
)
from services.profile.handlers.sealing import Vault
from services.profile.handlers.timeline import summarise

log = logging.getLogger(__name__)

# Identity kinds looked up in the database; "customer_id" is the subject itself.
MATCHED_KINDS: tuple[str, ...] = ("email", "phone", "erp_id", "shop_id")


@dataclass
class _Batch:
    """Profiles of one batch and an index of their identities, kept current as upserts and merges happen."""

    profiles: dict[str, Working] = field(default_factory=dict)
    index: dict[str, dict[str, set[str]]] = field(default_factory=lambda: {kind: {} for kind in MATCHED_KINDS})
    new_aliases: dict[str, str] = field(default_factory=dict)
    merges: list[tuple[str, tuple[str, ...], CloudEvent]] = field(default_factory=list)
    # Ids without a profile of their own that an event showed to be an existing customer, with that event.
    aliased: list[tuple[str, CloudEvent]] = field(default_factory=list)

    def index_profile(self, working: Working, present: bool = True) -> None:
        identities = working.state.identities
        for kind in MATCHED_KINDS:
            value = getattr(identities, kind)
            if value is None:
                continue
            holders = self.index[kind].setdefault(value, set())
            if present:
                holders.add(working.state.customer_id)
            else:
                holders.discard(working.state.customer_id)


def follow(survivors: dict[str, str], customer_id: str) -> str:
    """The id a customer's data lives under now (merges in this batch can chain: a -> b -> c)."""
    seen = {customer_id}
    while customer_id in survivors:
        customer_id = survivors[customer_id]
        if customer_id in seen:
            break  # defensive: a cycle would be a bug elsewhere, not a reason to hang the partition
        seen.add(customer_id)
    return customer_id


class ProfileConsumer:
    """The BatchHandler of the customer-events subscription (configured once per process)."""

    def __init__(self, *, clock_mode: str = "live", state_cache_size: int = 20_000) -> None:
        self.clock_mode = clock_mode
        self.cache = StateCache(state_cache_size)
        self.segments = SegmentDefinitions()

    async def __call__(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        parsed = self._parse(events)
        if not parsed:
            return
        session = ctx.session
        subjects = {event.subject for event, _ in parsed}
        await profiles.enter_erasure_gate(session)
        parsed = await self._after_erasures(session, parsed, subjects)
        if not parsed:
            return
        survivors = await profiles.survivors_of(session, subjects)
        vault = Vault(ctx.personal)
        batch = await self._load(session, parsed, survivors, vault)
        timeline = self._apply(batch, parsed, survivors)

        for survivor, merged, _ in batch.merges:
            await profiles.record_merge(session, survivor, merged)
        await profiles.add_aliases(session, batch.new_aliases)
        newest = max(event.time for event, _ in parsed)
        clock = as_of(self.clock_mode, newest)
        await save_and_announce(
            session,
            ctx.outbox,
            list(batch.profiles.values()),
            as_of=clock,
            segments=await self.segments.load(session),
            cache=self.cache,
            vault=vault,
        )
        # A merge later in the batch moves rows written under the merged id; remap before inserting.
        timeline = [
            row if row.customer_id not in survivors else row.moved_to(follow(survivors, row.customer_id))
            for row in timeline
        ]
        await profiles.insert_timeline(session, timeline)
        await ctx.emit(PROFILE_CHANGES, *self._join_announcements(batch, survivors))

    @staticmethod
    async def _after_erasures(
        session: AsyncSession, parsed: list[tuple[CloudEvent, EventData]], subjects: set[str]
    ) -> list[tuple[CloudEvent, EventData]]:
        """Drops events about an erased id from before its erasure; a newer one is the customer coming back."""
        erased = await profiles.erased_at(session, subjects)
        if not erased:
            return parsed
        return [(e, p) for e, p in parsed if e.subject not in erased or e.time > erased[e.subject]]

    def _apply(
        self, batch: _Batch, parsed: list[tuple[CloudEvent, EventData]], survivors: dict[str, str]
    ) -> list[TimelineRow]:
        """Applies the events in order to the batch's profiles; returns the timeline rows of those that changed one."""
        timeline: list[TimelineRow] = []
        for event, payload in parsed:
            target = follow(survivors, event.subject)
            if event.type == "customer.upserted":
                target = self._resolve(batch, event, target, survivors)
            working = batch.profiles.get(target)
            if working is None:
                working = batch.profiles[target] = Working.fresh(target)
            if event.type == "customer.upserted":
                batch.index_profile(working, present=False)
            if apply_in_place(working.state, event, payload, working.seen, working.touched):
                working.touch(Cause(event.id, event.type, event.time))
                timeline.append(TimelineRow(target, event.time, event.id, event.type, summarise(event.type, payload)))
            if event.type == "customer.upserted":
                batch.index_profile(working)
        return timeline

    @staticmethod
    def _join_announcements(batch: _Batch, survivors: dict[str, str]) -> list[CloudEvent]:
        """`profile.merged` for every merge of the batch, `profile.aliased` for every id recognised as a customer."""
        merged_events = [
            derived(
                ProfileMerged(survivor_id=survivor, merged_id=merged_id),
                cause=f"{cause.id}:{merged_id}",
                source=SOURCE,
                subject=survivor,
                time=cause.time,
            )[1]
            for survivor, merged_ids, cause in batch.merges
            for merged_id in merged_ids
        ]
        # Other services may hold something under an aliased id too (campaign: purchases it saw first).
        aliased_events = []
        for alias, cause in batch.aliased:
            customer = follow(survivors, alias)
            aliased_events.append(
                derived(
                    ProfileAliased(customer_id=customer, alias_id=alias),
                    cause=f"{cause.id}:{alias}",
                    source=SOURCE,
                    subject=customer,
                    time=cause.time,
                )[1]
            )
        return [*merged_events, *aliased_events]

    @staticmethod
    def _parse(events: Sequence[CloudEvent]) -> list[tuple[CloudEvent, EventData]]:
        """Validates every payload before anything changes: one bad event fails the batch, and the consumer loop
        then retries event by event, dead-lettering just this one (PoisonEvent is never retried)."""
        parsed: list[tuple[CloudEvent, EventData]] = []
        for event in events:
            if event.type not in UPSTREAM_EVENT_TYPES:
                continue  # derived or future types on the topic are not ours to fold
            if not event.subject.strip() or len(event.subject) > 128:
                raise PoisonEvent(f"event {event.id}: ce_subject must be a customer id of 1-128 characters")
            try:
                parsed.append((event, parse_payload(event.type, event.data)))
            except InvalidEvent as exc:
                raise PoisonEvent(f"event {event.id}: {exc}") from exc
        return parsed

    async def _load(
        self, session: Any, parsed: list[tuple[CloudEvent, EventData]], survivors: dict[str, str], vault: Vault
    ) -> _Batch:
        ids = {follow(survivors, event.subject) for event, _ in parsed}
        wanted: dict[str, set[str]] = {kind: set() for kind in MATCHED_KINDS}
        for event, _ in parsed:
            if event.type == "customer.upserted":
                for kind, value in identifiers_from_event(event).present().items():
                    if kind in wanted:
                        wanted[kind].add(value)
        batch = _Batch()
        stored_documents: dict[str, str] = {}
        unheld: list[str] = []
        # The columns hold blind indexes of email and phone: the batch's values are looked up as such.
        locked = await profiles.lock_profiles(session, ids, vault.lookups(wanted), self.cache.held_revs(ids))
        for stored in locked:
            working = self.cache.take(stored)
            if working is not None:
                batch.profiles[stored.customer_id] = working
            elif stored.state_json is not None:
                stored_documents[stored.customer_id] = stored.state_json
            else:
                # The cache's entry changed after `held_revs` (a concurrent transaction rolled back): read it.
                unheld.append(stored.customer_id)
        if unheld:
            stored_documents.update(await profiles.documents(session, unheld))
        for customer_id, document in (await vault.open_texts(stored_documents)).items():
            batch.profiles[customer_id] = self.cache.miss(document)
        for working in batch.profiles.values():
            batch.index_profile(working)
        return batch

    def _resolve(self, batch: _Batch, event: CloudEvent, target: str, survivors: dict[str, str]) -> str:
        """Where a customer.upserted event belongs; merges profiles it proves to be one person."""
        identifiers = identifiers_from_event(event)
        matches: dict[str, list[str]] = {}
        if target in batch.profiles:
            matches["customer_id"] = [target]
        for kind, value in identifiers.present().items():
            holders = batch.index.get(kind, {}).get(value)
            if holders:
                matches[kind] = sorted(holders)
        candidates = {pid for pids in matches.values() for pid in pids}
        first_seen = {pid: batch.profiles[pid].state.first_seen for pid in candidates}
        decision = resolve_identity(identifiers, matches, first_seen)
        if decision.kind is DecisionKind.CREATE:
            return target
        survivor = decision.profile_id
        if decision.kind is DecisionKind.MERGE:
            kept = batch.profiles[survivor]
            batch.index_profile(kept, present=False)
            for merged_id in decision.merged_ids:
                gone = batch.profiles.pop(merged_id)
                batch.index_profile(gone, present=False)
                kept.state = merge_states(kept.state, gone.state)
                kept.seen |= gone.seen
                self.cache.forget([merged_id])
                # Events later in this batch for the merged id go to the survivor too.
                survivors[merged_id] = survivor
                for alias, points_to in list(batch.new_aliases.items()):
                    if points_to == merged_id:
                        batch.new_aliases[alias] = survivor
            kept.touch(Cause(event.id, event.type, event.time))
            batch.index_profile(kept)
            batch.merges.append((survivor, decision.merged_ids, event))
            log.info("profiles merged", extra={"survivor": survivor, "merged": list(decision.merged_ids)})
        if target != survivor and target not in decision.merged_ids:
            # The subject had no profile of its own: its later identifier-less events must find this one.
            batch.new_aliases[target] = survivor
            survivors[target] = survivor
            batch.aliased.append((target, event))
        return survivor
