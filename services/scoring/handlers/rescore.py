"""Use cases: fold profile and feedback events into customer facts, rescore, emit what changed."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.aliases import JOIN_EVENT_TYPES, joined_ids
from libs.common.clock import as_of as clock_as_of
from libs.common.consumer import HandlerContext
from libs.common.contracts import (
    Contract,
    FeedbackReceived,
    ProfileUpdated,
    ScoreChanged,
    SlaBreached,
    ThresholdCrossed,
    derived,
    parse,
)
from libs.common.envelope import CloudEvent
from libs.common.erasures import ERASED_EVENT_TYPE, erased_id
from libs.common.logs import current_customer_id, current_event_id
from libs.common.topics import SCORE_CHANGES
from services.scoring.adapters import history, scores
from services.scoring.domain.due import earliest, model_due, next_due
from services.scoring.domain.facts import (
    StoredFacts,
    apply_feedback,
    apply_profile_metrics,
    apply_purchases,
    seen,
)
from services.scoring.domain.history import HistoryEntry, history_entry
from services.scoring.domain.policy import ActiveModel, outgoing_events, score, score_document, snapshot_of
from services.scoring.handlers.deps import ScoringDeps

SOURCE = "retain/scoring"
PROFILE_EVENT_TYPES = frozenset({"profile.updated", ERASED_EVENT_TYPE}) | JOIN_EVENT_TYPES
PURCHASE_EVENT_TYPE = "purchase"
REFUND_EVENT_TYPE = "refund"
PURCHASE_EVENT_TYPES = frozenset({PURCHASE_EVENT_TYPE, REFUND_EVENT_TYPE})
FEEDBACK_CONTRACTS: dict[str, type[Contract]] = {"feedback.received": FeedbackReceived, "sla.breached": SlaBreached}
FEEDBACK_EVENT_TYPES = frozenset(FEEDBACK_CONTRACTS)


@dataclass
class Rescore:
    """One customer to (re)score: the cause names the derived events and gives them their time."""

    customer_id: str
    cause_id: str
    time: datetime
    as_of: datetime
    trigger: str = "event"  # event, refit or due: kept with the score history


@dataclass
class BatchResult:
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[CloudEvent] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    due: dict[str, datetime | None] = field(default_factory=dict)  # next due time of every customer scored

    async def store_history_and_due(self, session: AsyncSession) -> None:
        await history.append(session, self.history)
        await history.set_due(session, self.due)


def score_batch(
    deps: ScoringDeps,
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
            item.as_of, deps.settings.scoring_complaint_open_days, deps.settings.scoring_sla_breach_days
        )
        previous_snapshot = None if previous is None else snapshot_of(previous)
        outcome = score(customer, item.as_of, active, previous_snapshot, deps.config, deps.small_base)
        document = score_document(outcome, customer, active.version, deps.small_base)
        for out in outgoing_events(previous, document, deps.change):
            # built through the contract: a field the contract does not declare cannot leave the service
            _, event = derived(
                _CONTRACT_OF[out.type].model_validate(out.data),
                cause=f"{item.cause_id}#{out.key}",
                source=SOURCE,
                subject=item.customer_id,
                time=item.time,
            )
            result.events.append(event)
            if out.type == "score.changed":
                result.history.append(
                    history_entry(
                        item.customer_id,
                        event.id,
                        at=item.time,
                        as_of=item.as_of,
                        trigger=item.trigger,
                        cause_id=item.cause_id,
                        previous=previous,
                        document=document,
                    )
                )
        result.due[item.customer_id] = earliest(
            next_due(facts, item.as_of, deps.due_config),
            model_due(customer, item.as_of, active.model.purchase_model, outcome.churn, deps.due_config),
        )
        documents[item.customer_id] = document
        result.documents[item.customer_id] = document
    return result


class ScoringConsumers:
    """The consumers of profile-changes, feedback-events and purchases: fold each batch, rescore, emit."""

    def __init__(self, deps: ScoringDeps) -> None:
        self.deps = deps

    # -- consumers ---------------------------------------------------------------------------------

    async def handle_profile_changes(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        await self._handle(ctx, events)

    async def handle_feedback(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        await self._handle(ctx, events)

    async def handle_purchases(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        await self._handle(ctx, events)

    async def _handle(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        """One batch: lock every id it names, drop what describes an erased customer, apply joins and erasures
        in order, store purchases, fold profile and feedback documents, then score each customer it changed once
        and put the derived events in the outbox."""
        session = ctx.session
        named = {customer_id for event in events for customer_id in _ids_named(event)}
        await scores.lock_customers(session, named)
        resolved = await scores.resolve(session, named)
        erased = await scores.erased_at(session, {*named, *resolved.values()})
        admitted = [event for event in events if not _describes_erased(event, resolved, erased)]
        if not admitted:
            return
        targets = {_target(event, resolved) for event in admitted if event.type not in _STRUCTURAL}
        stored, documents = await scores.lock_and_load(session, sorted(targets))
        active = await self.deps.active_model(session)
        fold = Fold(watermark=await scores.newest_event_time(session))
        for event in admitted:
            current_event_id.set(event.id)
            current_customer_id.set(event.subject)
            if fold.watermark is None or event.time > fold.watermark:
                fold.watermark = event.time
            if event.type == ERASED_EVENT_TYPE:
                await self._erase(session, event, resolved, erased, fold, stored, documents)
                continue
            if event.type in JOIN_EVENT_TYPES:
                await self._join(session, event, resolved, fold, stored, documents)
                continue
            customer_id = _target(event, resolved)
            if _describes_erased(event, resolved, erased, customer_id):
                continue  # erased earlier in this batch
            facts = self._fold_event(event, customer_id, stored.get(customer_id) or StoredFacts(customer_id), fold)
            if facts is None:
                continue
            stored[customer_id] = facts
            fold.changed[customer_id] = facts
            fold.causes[customer_id] = (event.id, event.time)
        await self._store_purchases(session, fold, stored, erased)
        await self._score_and_emit(ctx, fold, stored, documents, active)

    def _fold_event(self, event: CloudEvent, customer_id: str, facts: StoredFacts, fold: Fold) -> StoredFacts | None:
        """The customer's facts with one purchase, refund, profile or feedback event applied; None for a purchase
        or refund that changes nothing. Purchases and refunds are collected in `fold` to be stored together."""
        if event.type == PURCHASE_EVENT_TYPE:
            row = _purchase_row(event, customer_id)
            if row is None:
                return None
            fold.bought.append(row)
            fold.purchases_changed.add(customer_id)
            return seen(facts, event.time)
        if event.type == REFUND_EVENT_TYPE:
            refund = _refund_row(event, customer_id)
            if refund is None:
                return None
            fold.refunded.append(refund)
            fold.purchases_changed.add(customer_id)
            return seen(facts, event.time)
        if event.type == "profile.updated":
            profile = parse(event, ProfileUpdated)
            return apply_profile_metrics(facts, profile.metrics.model_dump(mode="json"), event.time, _version(profile))
        if event.type in FEEDBACK_EVENT_TYPES:
            feedback = parse(event, FEEDBACK_CONTRACTS[event.type])
            return apply_feedback(
                facts,
                event.type,
                feedback.wire(),
                event.time,
                self.deps.settings.scoring_complaint_open_days,
                event.id,
            )
        return facts

    @staticmethod
    async def _store_purchases(
        session: AsyncSession, fold: Fold, stored: dict[str, StoredFacts], erased: dict[str, datetime]
    ) -> None:
        """Stores the batch's purchases and refunds and folds the new purchase summaries into the facts."""
        # a purchase of this batch about a customer an erasure of this batch covers is the erased person's
        bought = [
            row
            for row in fold.bought
            if not (row.customer_id in erased and row.purchased_at <= erased[row.customer_id])
        ]
        refunded = [
            row
            for row in fold.refunded
            if not (row.customer_id in erased and row.refunded_at <= erased[row.customer_id])
        ]
        await scores.add_purchases(session, bought)
        await scores.add_refunds(session, refunded)
        summaries = await scores.purchase_summaries(session, fold.purchases_changed)
        for customer_id in fold.purchases_changed:
            if customer_id in fold.changed:
                facts = apply_purchases(fold.changed[customer_id], summaries.get(customer_id))
                stored[customer_id] = fold.changed[customer_id] = facts

    async def _score_and_emit(
        self,
        ctx: HandlerContext,
        fold: Fold,
        stored: dict[str, StoredFacts],
        documents: dict[str, dict[str, Any]],
        active: ActiveModel,
    ) -> None:
        """Scores each changed customer once, as of the batch's clock, and stores and announces what changed."""
        session = ctx.session
        now = clock_as_of(self.deps.settings.clock_mode, fold.watermark, self.deps.wall)
        work = [Rescore(cid, cause, at, now) for cid, (cause, at) in sorted(fold.causes.items()) if cid in fold.changed]
        if len(work) >= _THREAD_FROM_CUSTOMERS:
            # a full batch is ~1 ms of numpy per customer: off the event loop, so HTTP stays responsive
            result = await asyncio.to_thread(score_batch, self.deps, work, stored, documents, active)
        else:
            result = score_batch(self.deps, work, stored, documents, active)
        await scores.save(session, list(fold.changed.values()), result.documents)
        await result.store_history_and_due(session)
        if result.events:
            await ctx.emit(SCORE_CHANGES, *result.events)
        if fold.watermark is not None:
            await scores.advance_clock(session, fold.watermark)

    async def _erase(
        self,
        session: AsyncSession,
        event: CloudEvent,
        resolved: dict[str, str],
        erased: dict[str, datetime],
        fold: Fold,
        stored: dict[str, StoredFacts],
        documents: dict[str, dict[str, Any]],
    ) -> None:
        customer_id = erased_id(event)
        ids = [customer_id, *await scores.ids_joined_to(session, customer_id)]
        await scores.erase_customers(session, ids, event.time)
        for erased_one in ids:
            erased[erased_one] = max(event.time, erased.get(erased_one, event.time))
            resolved[erased_one] = erased_one
            for state in (stored, documents, fold.changed, fold.causes):
                state.pop(erased_one, None)
            fold.purchases_changed.discard(erased_one)

    async def _join(
        self,
        session: AsyncSession,
        event: CloudEvent,
        resolved: dict[str, str],
        fold: Fold,
        stored: dict[str, StoredFacts],
        documents: dict[str, dict[str, Any]],
    ) -> None:
        joined = joined_ids(event)
        if joined is None:
            return  # malformed join into itself: nothing to move
        from_id, into_id = joined
        into_id = resolved.get(into_id, into_id)
        if from_id == into_id:
            return
        await scores.join(session, from_id, into_id)
        for alias, target in list(resolved.items()):
            if alias == from_id or target == from_id:
                resolved[alias] = into_id
        resolved[from_id] = into_id
        for state in (stored, documents, fold.changed, fold.causes):
            state.pop(from_id, None)
        fold.purchases_changed.discard(from_id)
        if into_id not in stored:
            loaded, loaded_documents = await scores.lock_and_load(session, [into_id])
            stored.update(loaded)
            documents.update(loaded_documents)
        facts = stored.get(into_id) or StoredFacts(into_id)
        stored[into_id] = fold.changed[into_id] = facts
        fold.causes[into_id] = (event.id, event.time)
        fold.purchases_changed.add(into_id)


_THREAD_FROM_CUSTOMERS = 32
_CONTRACT_OF: dict[str, type[Contract]] = {"score.changed": ScoreChanged, "threshold.crossed": ThresholdCrossed}
_BEFORE_EVERYTHING = datetime.min.replace(tzinfo=UTC)
_STRUCTURAL = frozenset({ERASED_EVENT_TYPE}) | JOIN_EVENT_TYPES


@dataclass
class Fold:
    watermark: datetime | None
    changed: dict[str, StoredFacts] = field(default_factory=dict)
    causes: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # last event of each customer
    purchases_changed: set[str] = field(default_factory=set)
    bought: list[scores.PurchaseRow] = field(default_factory=list)
    refunded: list[scores.RefundRow] = field(default_factory=list)


def _ids_named(event: CloudEvent) -> tuple[str, ...]:
    if event.type == ERASED_EVENT_TYPE:
        return (erased_id(event),)
    joined = joined_ids(event)
    return joined if joined is not None else (event.subject,)


def _target(event: CloudEvent, resolved: dict[str, str]) -> str:
    """The customer a purchase, profile or feedback event changes: its subject, or the customer profile joined
    the subject to."""
    return resolved.get(event.subject, event.subject)


def _describes_erased(
    event: CloudEvent, resolved: dict[str, str], erased: dict[str, datetime], target: str | None = None
) -> bool:
    """An event about an erased id whose time is not after the erasure describes the erased person."""
    if event.type == ERASED_EVENT_TYPE:
        return False
    ids = {*_ids_named(event)}
    ids |= {resolved.get(customer_id, customer_id) for customer_id in ids}
    if target is not None:
        ids.add(target)
    return any(customer_id in erased and event.time <= erased[customer_id] for customer_id in ids)


def _version(profile: ProfileUpdated) -> int | None:
    """The document's version; None for an announcement from before profile sent one."""
    return profile.version if "version" in profile.model_fields_set else None


def _purchase_row(event: CloudEvent, customer_id: str) -> scores.PurchaseRow | None:
    order_id = event.data.get("order_id")
    try:
        amount = float(event.data.get("amount"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not order_id or not math.isfinite(amount):
        return None
    return scores.PurchaseRow(customer_id, str(order_id), event.time, amount, event.id)


def _refund_row(event: CloudEvent, customer_id: str) -> scores.RefundRow | None:
    order_id = event.data.get("order_id")
    try:
        amount = float(event.data.get("amount"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not order_id or not math.isfinite(amount) or amount <= 0:
        return None
    refund_id = event.data.get("refund_id")
    return scores.RefundRow(
        customer_id, event.id, str(order_id), event.time, amount, None if refund_id is None else str(refund_id)
    )
