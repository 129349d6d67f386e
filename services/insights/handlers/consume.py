"""Counting from the event stream: purchases, refunds, scores, survey answers and erasures into insights' tables.

Each batch stores what it brings and marks the periods whose figures it changed; `handlers/figures.py`
recomputes those. The inbox drops redelivered events; a repeated order id replaces the stored order only when it
is newer (event time, then event id), and a refund is kept once per event id whether or not its order has arrived,
so the figures are the same whatever the arrival order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from libs.common.aliases import JOIN_EVENT_TYPES, joined_ids
from libs.common.consumer import HandlerContext, PoisonEvent
from libs.common.contracts import CustomerErased, FeedbackReceived, ProfileUpdated, ScoreChanged, parse
from libs.common.envelope import CloudEvent
from services.insights.adapters import store
from services.insights.domain.facts import (
    DirtyPeriod,
    InvalidFact,
    Purchase,
    Refund,
    Score,
    SurveyScore,
    periods_from,
    periods_touched,
    purchase_of,
    refund_of,
    score_of,
    survey_score_of,
    traits_of,
)
from services.insights.domain.periods import utc_day

PURCHASE = "purchase"
REFUND = "refund"
# Both change what an order counts for: a refund nets off its order's amount.
ORDER_TYPES = frozenset({PURCHASE, REFUND})
SCORE_TYPES = frozenset({"score.changed"})
FEEDBACK_TYPES = frozenset({"feedback.received"})
PROFILE_UPDATED = "profile.updated"
CUSTOMER_ERASED = "customer.erased"
PROFILE_TYPES = frozenset({PROFILE_UPDATED, CUSTOMER_ERASED}) | JOIN_EVENT_TYPES


async def _kept(ctx: HandlerContext, events: Sequence[CloudEvent]) -> list[CloudEvent]:
    """Events not describing a customer erased after the event happened, each under the customer its subject
    stands for (profile's joins); advances the replay clock."""
    await store.lock_for_counting(ctx.session)
    if not events:
        return []
    await store.advance_clock(ctx.session, max(event.time for event in events))
    resolved = await store.resolve(ctx.session, {event.subject for event in events})
    erased = await store.erased_at(ctx.session, sorted({*resolved, *resolved.values()}))
    kept = []
    for event in events:
        customer = resolved[event.subject]
        if any(i in erased and event.time <= erased[i] for i in (event.subject, customer)):
            continue
        kept.append(event if customer == event.subject else replace(event, subject=customer))
    return kept


def _newest_per_order(purchases: Sequence[Purchase]) -> dict[str, Purchase]:
    newest: dict[str, Purchase] = {}
    for purchase in purchases:
        held = newest.get(purchase.order_id)
        if held is None or purchase.supersedes(held.at, held.event_id):
            newest[purchase.order_id] = purchase
    return newest


async def on_purchases(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    """Purchases and refunds of `customer-events`: stores them, then re-derives each touched customer's purchase
    days from the earliest day whose orders changed."""
    kept = await _kept(ctx, events)
    try:
        incoming = [purchase_of(e.id, e.subject, e.time, e.data) for e in kept if e.type == PURCHASE]
        refunds = [r for e in kept if e.type == REFUND and (r := refund_of(e.id, e.subject, e.time, e.data))]
    except InvalidFact as exc:
        raise PoisonEvent(str(exc)) from exc
    since: dict[str, date] = {}
    if incoming:
        _earliest(since, await _store_purchases(ctx, incoming))
    if refunds:
        _earliest(since, await _store_refunds(ctx, refunds))
    if not since:
        return
    days = await store.rederive_customers(ctx.session, since)
    dirty: set[DirtyPeriod] = set()
    for customer, first_changed in since.items():
        dirty |= periods_touched(days.get(customer, ()), since=first_changed)
    await store.mark_dirty(ctx.session, dirty)


def _earliest(since: dict[str, date], changes: list[tuple[str, date]]) -> None:
    for customer, day in changes:
        since[customer] = min(day, since.get(customer, day))


async def _store_purchases(ctx: HandlerContext, incoming: list[Purchase]) -> list[tuple[str, date]]:
    """Writes the orders that win over what is stored; returns (customer, day) of each order written or replaced."""
    newest = _newest_per_order(incoming)
    stored = await store.stored_orders(ctx.session, sorted(newest))
    winners = [
        p
        for order, p in newest.items()
        if order not in stored or p.supersedes(stored[order].at, stored[order].event_id)
    ]
    if not winners:
        return []
    await store.write_purchases(ctx.session, winners)
    changes = []
    for purchase in winners:
        changes.append((purchase.customer_id, purchase.day))
        replaced = stored.get(purchase.order_id)
        if replaced is not None:
            changes.append((replaced.customer_id, replaced.day))
    return changes


async def _store_refunds(ctx: HandlerContext, refunds: list[Refund]) -> list[tuple[str, date]]:
    """Keeps each refund once; returns (customer, day) of the stored orders they net off. A refund of an order not
    seen yet waits in its table: the order's purchase days net it when the order arrives."""
    refunded = await store.write_refunds(ctx.session, refunds)
    orders = await store.stored_orders(ctx.session, sorted(refunded))
    return [(order.customer_id, order.day) for order in orders.values()]


async def on_scores(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    scores: list[Score] = [score_of(e.id, e.subject, e.time, parse(e, ScoreChanged)) for e in await _kept(ctx, events)]
    if not scores:
        return
    await store.write_scores(ctx.session, scores)
    # A score holds until the customer's next one: every period from its own to the newest may have changed.
    await store.mark_dirty(ctx.session, periods_from(min(utc_day(s.at) for s in scores), await _today(ctx)))


async def on_feedback(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    answers: list[SurveyScore] = []
    for event in await _kept(ctx, events):
        try:
            answer = survey_score_of(event.id, event.subject, event.time, parse(event, FeedbackReceived))
        except InvalidFact as exc:
            raise PoisonEvent(str(exc)) from exc
        if answer is not None:
            answers.append(answer)
    if not answers:
        return
    await store.write_survey_scores(ctx.session, answers)
    dirty: set[DirtyPeriod] = set()
    for answer in answers:
        day = utc_day(answer.at)
        dirty |= periods_from(day, day)
    await store.mark_dirty(ctx.session, dirty)


async def on_profile_changes(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    changes = [e for e in events if e.type == CUSTOMER_ERASED or joined_ids(e) is not None]
    if changes:
        # Only a batch that erases or joins takes the exclusive lock (counting batches hold it shared, so none is
        # halfway through writing under an id being moved); profile updates count alongside purchases.
        await store.lock_for_erasure(ctx.session)
    for event in changes:
        joined = joined_ids(event)
        if joined is not None:
            await _join(ctx, *joined)
            continue
        customer_id = parse(event, CustomerErased).customer_id
        days = await store.erase(ctx.session, customer_id, event.time)
        if days:
            # Removing a customer's first day moves nothing else, but every later period counted them.
            await store.mark_dirty(ctx.session, periods_touched(days, since=min(days)))
    # Erasures first: a profile announced before its customer's erasure in the same batch is then dropped.
    updates = await _kept(ctx, [e for e in events if e.type == PROFILE_UPDATED])
    traits = [t for t in (traits_of(parse(e, ProfileUpdated)) for e in updates) if t is not None]
    if traits:
        await store.write_traits(ctx.session, traits)


async def _join(ctx: HandlerContext, from_id: str, into_id: str) -> None:
    """Two ids are one customer: counted once, from the earliest day either of them bought on."""
    customer, old_days, moved = await store.join(ctx.session, from_id, into_id)
    if moved is None and not old_days:
        return
    since = min([*old_days, *([moved] if moved else [])])
    days = await store.rederive_customers(ctx.session, {customer: since})
    await store.mark_dirty(ctx.session, periods_touched([*old_days, *days.get(customer, ())], since=since))


async def _today(ctx: HandlerContext) -> date:
    newest: datetime | None = await store.newest_event_at(ctx.session)
    assert newest is not None  # advanced by this very batch
    return utc_day(newest)
