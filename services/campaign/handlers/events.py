"""Consumers: keep local customer facts up to date and fire the campaigns events trigger.

Campaign never reads another service's tables; what it needs about a customer arrives as events
and is kept in `customer_facts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from libs.common.aliases import joined_ids
from libs.common.consumer import HandlerContext
from libs.common.contracts import (
    CustomerErased,
    FeedbackReceived,
    ProfileUpdated,
    ScoreChanged,
    SegmentsChanged,
    ThresholdCrossed,
    parse,
)
from libs.common.envelope import CloudEvent
from libs.common.logs import current_customer_id, current_event_id
from services.campaign.adapters import campaigns, identities
from services.campaign.adapters.tables import aliases, erasures
from services.campaign.domain.coupons import normalize_code
from services.campaign.domain.identity import earliest, latest, merged_facts
from services.campaign.handlers.batch import Batch, CampaignCache
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.loyalty import LoyaltyLedger, emit_level_change, recompute_loyalty

# Profile tags meaning "no marketing at all", whatever the per-channel consents say.
OPT_OUT_TAGS = frozenset({"opted_out", "opt_out", "do_not_contact", "unsubscribed"})
# profile.updated metrics copied into customer_facts as they are.
_PLAIN_FACTS = ("name", "email", "phone", "favourite_category", "region", "timezone", "birthday")
_TIME_FACTS = ("first_purchase_at", "last_purchase_at")


def _segments_after(current: Mapping[str, Any], entered: Sequence[str], left: Sequence[str]) -> list[str] | None:
    """The customer's segments once `entered` and `left` apply; None when neither names any."""
    if not entered and not left:
        return None
    gone = set(left)
    return [s for s in dict.fromkeys([*(current.get("segments") or []), *entered]) if s not in gone]


SEGMENTS_CHANGED = "segments.changed"
SEGMENT_EVENT_TYPES = frozenset({SEGMENTS_CHANGED})


class CampaignHandlers:
    """One method per subscription, each taking a whole partition batch (`handle_*`), and the one-event forms
    (`on_*`) that run a batch of one."""

    def __init__(self, deps: CampaignDeps) -> None:
        self.deps = deps
        self.campaigns = CampaignCache()

    async def begin(self, ctx: HandlerContext, subjects: Sequence[str]) -> tuple[Batch, dict[str, str]]:
        """The batch's campaigns, and its subjects locked, resolved, and their facts and erasures read."""
        active = await self.campaigns.active(ctx.session, include_builtin=self.deps.include_builtin)
        batch = Batch(self.deps, ctx, active)
        resolved = await batch.resolve(set(subjects))
        await batch.load(resolved.values())
        return batch, resolved

    @staticmethod
    def _each(batch: Batch, events: Sequence[CloudEvent], resolved: Mapping[str, str]) -> list[CloudEvent]:
        """The batch's events in arrival order under the customer each stands for, without those that describe an
        erased customer (from before the erasure: a late delivery, another topic that overtook it, a replay)."""
        kept = []
        for event in events:
            customer_id = resolved[event.subject]
            if batch.describes_erased((event.subject, customer_id), event.time):
                continue
            kept.append(event if customer_id == event.subject else replace(event, subject=customer_id))
        return kept

    # --- score-changes --------------------------------------------------------------------

    async def handle_score_changes(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        batch, resolved = await self.begin(ctx, [event.subject for event in events])
        for event in self._each(batch, events, resolved):
            _in_context(event)
            await self._score_change(batch, event)
        await batch.finish()

    async def _score_change(self, batch: Batch, event: CloudEvent) -> None:
        if event.type == "score.changed":
            score = parse(event, ScoreChanged)
            values: dict[str, Any] = {
                "tier": score.tier,
                "stage": score.stage,
                "predicted_next_purchase_at": score.predicted_next_purchase_at,
            }
            if score.churn_risk is not None:
                values["churn_risk"] = str(score.churn_risk)
            batch.set(event.subject, values)
            batch.reschedule(event.subject, event.time)
        elif event.type == "threshold.crossed":
            crossing = parse(event, ThresholdCrossed)
            # Facts first, so an audience filter on the tier sees the tier the customer just reached.
            column = {"tier_up": "tier", "tier_down": "tier", "stage_changed": "stage"}.get(crossing.kind)
            if column:
                batch.set(event.subject, {column: str(crossing.new)})
            elif crossing.kind.startswith("churn_risk") and (crossing.level or crossing.new):
                batch.set(event.subject, {"churn_risk": str(crossing.level or crossing.new)})
            await batch.fire_event_triggers(event.subject, event.type, crossing.wire(), event.time)

    # --- profile-changes ------------------------------------------------------------------

    async def handle_profile_changes(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        subjects = []
        for event in events:
            subjects.append(event.subject)
            joined = joined_ids(event)
            if joined is not None:
                subjects.extend(joined)
            if event.type == "customer.erased":
                subjects.append(parse(event, CustomerErased).customer_id)
        active = await self.campaigns.active(ctx.session, include_builtin=self.deps.include_builtin)
        batch = Batch(self.deps, ctx, active)
        # Every id first, in one lock order; resolution happens per event, since a join earlier in the batch
        # changes what a later event's subject stands for.
        await batch.lock(subjects)
        await batch.read_erasures(set(subjects))
        await batch.load(set(subjects))
        for event in events:
            _in_context(event)
            await self._profile_change(batch, event)
        await batch.finish()

    async def _profile_change(self, batch: Batch, event: CloudEvent) -> None:
        if event.type == "customer.erased":
            await self._erase(batch, parse(event, CustomerErased).customer_id, event.time)
            return
        joined = joined_ids(event)
        if joined is not None:
            await self._join(batch, event, *joined)
            return
        if event.type != "profile.updated":
            return
        if batch.describes_erased([event.subject], event.time):
            return
        profile = parse(event, ProfileUpdated)
        await batch.load([event.subject])
        self._apply_profile(batch, event.subject, profile)
        batch.reschedule(event.subject, event.time)
        await batch.fire_event_triggers(event.subject, event.type, profile.wire(), event.time)

    @staticmethod
    def _apply_profile(batch: Batch, customer_id: str, profile: ProfileUpdated) -> None:
        metrics = profile.metrics
        # Only the metrics the announcement carries: one from before a metric existed leaves that fact alone.
        sent = metrics.model_fields_set
        current = batch.get(customer_id)
        values: dict[str, Any] = {key: getattr(metrics, key) for key in (*_PLAIN_FACTS, *_TIME_FACTS) if key in sent}
        activity = latest(metrics.last_login_at, metrics.last_purchase_at)
        if activity is not None:
            values["last_activity_at"] = latest(activity, current.get("last_activity_at"))
        if "consents" in sent:
            values["consents"] = {**(current.get("consents") or {}), **metrics.consents}
        if "tags" in sent:
            values["opted_out"] = bool(OPT_OUT_TAGS & set(metrics.tags))
        segments = _segments_after(current, profile.segments_entered, profile.segments_left)
        if segments is not None:
            values["segments"] = segments
        if values:
            batch.set(customer_id, values)

    # --- insights-events: segments computed by insights (behavioural clusters) -------------------

    async def handle_segment_changes(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        batch, resolved = await self.begin(ctx, [event.subject for event in events])
        for event in self._each(batch, events, resolved):
            _in_context(event)
            change = parse(event, SegmentsChanged)
            segments = _segments_after(batch.get(event.subject), change.segments_entered, change.segments_left)
            if segments is not None:
                batch.set(event.subject, {"segments": segments})
        await batch.finish()

    async def _join(self, batch: Batch, event: CloudEvent, from_id: str, into_id: str) -> None:
        """profile.merged / profile.aliased: `from_id` is the customer `into_id` from now on.

        Its purchases, coupons, actions and A/B arms move over, so loyalty points, frequency caps and conversions
        count the person once; the facts combine (stricter consent wins) and its later events resolve to `into_id`.
        """
        await batch.flush()
        into_id = await aliases.join(batch.session, from_id, into_id)
        await batch.read_erasures({into_id})
        if from_id == into_id or batch.describes_erased((from_id, into_id), event.time):
            return
        await batch.load([from_id, into_id])
        facts = merged_facts(batch.get(into_id), batch.get(from_id))
        moved_purchases = await identities.move_customer(batch.session, from_id, into_id)
        batch.forget([from_id])
        batch.reschedule_at.pop(from_id, None)
        batch.set(into_id, facts)
        if moved_purchases:
            await batch.flush()
            change = await recompute_loyalty(self.deps, batch.ctx, replace(event, subject=into_id))
            if change is not None:
                await batch.fire_event_triggers(into_id, change.type, change.data, event.time)
        batch.reschedule(into_id, event.time)

    async def _erase(self, batch: Batch, customer_id: str, at: datetime) -> None:
        """Right to erasure: nothing about the customer stays in campaign's tables, and nothing comes back.

        The id and every id joined to it are recorded with the erasure instant (`libs.common.erasures`), so an event
        of theirs from before it that arrives later (another topic, a redelivery, a replay) is dropped instead of
        recreating facts or issuing a coupon.
        """
        await batch.flush()
        await batch.lock([customer_id])
        ids = [customer_id, *await aliases.ids_joined_to(batch.session, customer_id)]
        await batch.lock(ids)
        await erasures.record(batch.session, ids, at)
        for erased in ids:
            await identities.erase_customer(batch.session, erased)
        await aliases.forget(batch.session, customer_id)
        batch.forget(ids)
        for erased in ids:
            batch.reschedule_at.pop(erased, None)
            batch.erased[erased] = max(at, batch.erased.get(erased, at))

    # --- feedback-events ------------------------------------------------------------------

    async def handle_feedback(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        wanted = [event for event in events if event.type == "feedback.received"]
        batch, resolved = await self.begin(ctx, [event.subject for event in wanted])
        for event in self._each(batch, wanted, resolved):
            _in_context(event)
            feedback = parse(event, FeedbackReceived)
            await batch.fire_event_triggers(event.subject, event.type, feedback.wire(), event.time)
        await batch.finish()

    # --- customer-events ------------------------------------------------------------------

    async def handle_customer_events(self, ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
        # Upstream systems post under their own ids; the ones profile has joined to a customer count for that one.
        batch, resolved = await self.begin(ctx, [event.subject for event in events])
        mine = self._each(batch, events, resolved)
        ledger = LoyaltyLedger(self.deps)
        await ledger.load(ctx.session, {event.subject for event in mine if event.type in ("purchase", "refund")})
        batch.flush_hooks.append(lambda: ledger.flush(ctx.session))
        for event in mine:
            _in_context(event)
            await self._customer_event(batch, ledger, event)
        await batch.finish()

    async def _customer_event(self, batch: Batch, ledger: LoyaltyLedger, event: CloudEvent) -> None:
        data = event.data
        customer_id = event.subject
        if event.type == "purchase":
            facts = batch.get(customer_id)
            batch.set(
                customer_id,
                {
                    "first_purchase_at": earliest(facts.get("first_purchase_at"), event.time),
                    "last_purchase_at": latest(facts.get("last_purchase_at"), event.time),
                    "last_activity_at": latest(facts.get("last_activity_at"), event.time),
                },
            )
            order_id = str(data.get("order_id") or event.id)
            code = normalize_code(str(data["coupon_code"])) if data.get("coupon_code") else None
            batch.reschedule(customer_id, event.time)
            if not ledger.add_purchase(event, order_id, code):
                return  # the same order under another event id: counted once
            if code:
                # Redemption is attributed to the coupon's campaign (and variant) through the coupon row.
                await batch.flush()
                await campaigns.redeem_coupon(batch.session, code, customer_id, order_id, event.time)
            await self._level(batch, ledger, event)
        elif event.type == "refund":
            if data.get("order_id") and ledger.refund(customer_id, str(data["order_id"])):
                await self._level(batch, ledger, event)
        elif event.type == "consent.changed" and data.get("channel"):
            consents = {
                **(batch.get(customer_id).get("consents") or {}),
                str(data["channel"]): bool(data.get("granted")),
            }
            batch.set(customer_id, {"consents": consents})
        elif event.type == "login":
            facts = batch.get(customer_id)
            batch.set(customer_id, {"last_activity_at": latest(facts.get("last_activity_at"), event.time)})
            batch.reschedule(customer_id, event.time)

    @staticmethod
    async def _level(batch: Batch, ledger: LoyaltyLedger, event: CloudEvent) -> None:
        change = ledger.recompute(event)
        if change is not None:
            level_event = await emit_level_change(batch.ctx, event, change)
            await batch.fire_event_triggers(event.subject, level_event.type, level_event.data, event.time)

    # --- one event at a time: a batch of one ----------------------------------------------

    async def on_score_change(self, ctx: HandlerContext, event: CloudEvent) -> None:
        await self.handle_score_changes(ctx, [event])

    async def on_profile_change(self, ctx: HandlerContext, event: CloudEvent) -> None:
        await self.handle_profile_changes(ctx, [event])

    async def on_feedback(self, ctx: HandlerContext, event: CloudEvent) -> None:
        await self.handle_feedback(ctx, [event])

    async def on_customer_event(self, ctx: HandlerContext, event: CloudEvent) -> None:
        await self.handle_customer_events(ctx, [event])


def _in_context(event: CloudEvent) -> None:
    current_event_id.set(event.id)
    current_customer_id.set(event.subject)
