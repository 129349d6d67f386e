"""Use cases: fold profile and feedback events into customer facts, rescore, emit what changed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.aliases import JOIN_EVENT_TYPES, joined_ids
from libs.common.clock import as_of as clock_as_of
from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, derived_event
from libs.common.logs import current_customer_id, current_event_id
from libs.common.topics import SCORE_CHANGES
from services.scoring.adapters import store
from services.scoring.domain.facts import StoredFacts, apply_feedback, apply_profile_metrics
from services.scoring.domain.policy import NO_MODEL, ActiveModel, outgoing_events, score, score_document, snapshot_of
from services.scoring.settings import ScoringSettings

SOURCE = "retain/scoring"
PROFILE_EVENT_TYPES = frozenset({"profile.updated", "customer.erased"}) | JOIN_EVENT_TYPES
FEEDBACK_EVENT_TYPES = frozenset({"feedback.received", "sla.breached"})


@dataclass
class Rescore:
    """One customer to (re)score: the cause names the derived events and gives them their time."""

    customer_id: str
    cause_id: str
    time: datetime
    as_of: datetime


@dataclass
class BatchResult:
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[CloudEvent] = field(default_factory=list)


class ScoringService:
    """Holds the configuration and the active model; one per process, shared by consumers, the
    refit task and the API."""

    def __init__(self, settings: ScoringSettings) -> None:
        self.settings = settings
        self.config = settings.scoring_config()
        self.change = settings.change_config()
        self.small_base = settings.small_base_config()
        self._active: ActiveModel = NO_MODEL

    # -- model and clock -------------------------------------------------------------------------

    async def active_model(self, session: AsyncSession) -> ActiveModel:
        """The newest stored model. One indexed max() per batch; the model itself is reloaded only
        when another replica (or this one) stored a new version."""
        latest = await store.latest_model_version(session)
        if latest is None:
            return NO_MODEL
        if self._active.version != latest:
            self._active = await store.load_model(session, latest)
        return self._active

    def use_model(self, active: ActiveModel) -> None:
        self._active = active

    async def clock(self, session: AsyncSession, newest_in_batch: datetime | None = None) -> datetime:
        """Wall time live; the newest event time seen (stored watermark or this batch) in replay."""
        newest = await store.newest_event_time(session)
        if newest_in_batch is not None and (newest is None or newest_in_batch > newest):
            newest = newest_in_batch
        return clock_as_of(self.settings.clock_mode, newest)

    # -- scoring -----------------------------------------------------------------------------------

    def score_batch(
        self,
        work: Sequence[Rescore],
        stored: dict[str, StoredFacts],
        documents: dict[str, dict[str, Any]],
        active: ActiveModel,
    ) -> BatchResult:
        """Pure CPU: scores ``work`` in order against the current documents (updated as it goes, so
        two events of one customer in a batch compare against each other)."""
        result = BatchResult()
        for item in work:
            facts = stored.get(item.customer_id) or StoredFacts(item.customer_id)
            previous = documents.get(item.customer_id)
            customer = facts.customer_facts(
                item.as_of, self.settings.scoring_complaint_open_days, self.settings.scoring_sla_breach_days
            )
            previous_snapshot = None if previous is None else snapshot_of(previous)
            outcome = score(customer, item.as_of, active, previous_snapshot, self.config, self.small_base)
            document = score_document(outcome, customer, active.version, self.small_base)
            for out in outgoing_events(previous, document, self.change):
                result.events.append(
                    derived_event(
                        cause=f"{item.cause_id}#{out.key}",
                        source=SOURCE,
                        type=out.type,
                        subject=item.customer_id,
                        time=item.time,
                        data=out.data,
                    )
                )
            documents[item.customer_id] = document
            result.documents[item.customer_id] = document
        return result

    # -- consumers ---------------------------------------------------------------------------------

    async def handle_profile_changes(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        await self._handle(ctx, events)

    async def handle_feedback(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        await self._handle(ctx, events)

    async def _handle(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        """One batch: lock and load every customer it touches once, fold the events in order, score,
        write back with one statement per table, and put the derived events in the outbox."""
        stored, documents = await store.lock_and_load(ctx.session, [_target(event) for event in events])
        active = await self.active_model(ctx.session)
        watermark = await store.newest_event_time(ctx.session)
        if len(events) >= _THREAD_FROM_EVENTS:
            # a full batch is ~1 ms of numpy per event: off the event loop, so HTTP stays responsive
            fold = await asyncio.to_thread(self.fold, events, stored, documents, active, watermark)
        else:
            fold = self.fold(events, stored, documents, active, watermark)
        await store.erase(ctx.session, fold.erased)
        await store.save(ctx.session, list(fold.changed.values()), fold.result.documents)
        if fold.result.events:
            await ctx.emit(SCORE_CHANGES, *fold.result.events)
        if fold.watermark is not None:
            await store.advance_clock(ctx.session, fold.watermark)

    def fold(
        self,
        events: Sequence[CloudEvent],
        stored: dict[str, StoredFacts],
        documents: dict[str, dict[str, Any]],
        active: ActiveModel,
        watermark: datetime | None,
    ) -> Fold:
        """Pure: applies ``events`` in order to the loaded state, scoring after each one so every
        event is compared with the score just before it."""
        live_now = datetime.now(UTC)
        fold = Fold(watermark=watermark)
        for event in events:
            current_event_id.set(event.id)
            current_customer_id.set(event.subject)
            customer_id = _target(event)
            if event.type == "customer.erased" or event.type in JOIN_EVENT_TYPES:
                if event.type in JOIN_EVENT_TYPES and customer_id == event.subject:
                    continue  # malformed join into itself: nothing to drop
                fold.erased.add(customer_id)
                for state in (stored, documents, fold.changed, fold.result.documents):
                    state.pop(customer_id, None)
                continue
            if fold.watermark is None or event.time > fold.watermark:
                fold.watermark = event.time
            facts = stored.get(customer_id) or StoredFacts(customer_id)
            if event.type == "profile.updated":
                metrics = event.data.get("metrics")
                facts = apply_profile_metrics(facts, metrics if isinstance(metrics, dict) else {}, event.time)
            elif event.type in FEEDBACK_EVENT_TYPES:
                facts = apply_feedback(
                    facts, event.type, event.data, event.time, self.settings.scoring_complaint_open_days
                )
            stored[customer_id] = facts
            fold.changed[customer_id] = facts
            fold.erased.discard(customer_id)  # a customer who comes back after erasure starts afresh
            now = live_now if self.settings.clock_mode == "live" else clock_as_of("replay", fold.watermark)
            one = self.score_batch([Rescore(customer_id, event.id, event.time, now)], stored, documents, active)
            fold.result.documents.update(one.documents)
            fold.result.events.extend(one.events)
        return fold


_THREAD_FROM_EVENTS = 32


@dataclass
class Fold:
    watermark: datetime | None
    erased: set[str] = field(default_factory=set)
    changed: dict[str, StoredFacts] = field(default_factory=dict)
    result: BatchResult = field(default_factory=BatchResult)


def _target(event: CloudEvent) -> str:
    """The customer an event changes: the erased one, the joined-away one (merged, or an alias that feedback
    scored before profile knew it; the customer gets its own profile.updated with that history), otherwise the
    subject."""
    if event.type == "customer.erased":
        return str(event.data.get("customer_id") or event.subject)
    joined = joined_ids(event)
    return joined[0] if joined is not None else event.subject
