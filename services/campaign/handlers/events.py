"""Consumers: keep local customer facts up to date and fire the campaigns events trigger.

Campaign never reads another service's tables; what it needs about a customer arrives as events
and is kept in `customer_facts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete

from libs.common.aliases import joined_ids
from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, EnvelopeError, parse_time
from services.campaign.adapters import identities
from services.campaign.adapters import repository as repo
from services.campaign.adapters.tables import (
    actions,
    aliases,
    assignments,
    coupons,
    customer_facts,
    loyalty_accounts,
    purchases,
    scheduled_triggers,
)
from services.campaign.domain.definitions import EVENT_TRIGGER_KINDS
from services.campaign.domain.identity import latest, merged_facts
from services.campaign.domain.triggers import matches, trigger_window
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.firing import fire
from services.campaign.handlers.loyalty import recompute_loyalty, record_purchase, record_refund
from services.campaign.handlers.scheduler import reschedule

# Profile tags meaning "no marketing at all", whatever the per-channel consents say.
OPT_OUT_TAGS = frozenset({"opted_out", "opt_out", "do_not_contact", "unsubscribed"})
# profile.updated metric -> customer_facts column, copied as they are.
_PLAIN_FACTS = ("name", "email", "phone", "favourite_category", "region", "timezone")
_TIME_FACTS = {
    "first_purchase_at": "first_purchase_at",
    "last_purchase_at": "last_purchase_at",
}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return parse_time(value)
        except EnvelopeError:
            return None
    return None


def _date(value: Any) -> date | None:
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return value if isinstance(value, date) else None


class CampaignHandlers:
    def __init__(self, deps: CampaignDeps) -> None:
        self.deps = deps

    # --- shared steps ---------------------------------------------------------------------

    async def fire_event_triggers(
        self, ctx: HandlerContext, customer_id: str, event_type: str, data: Mapping[str, Any], at: datetime
    ) -> None:
        campaigns = await repo.active_campaigns(ctx.session, include_builtin=self.deps.include_builtin)
        for campaign in campaigns:
            trigger = campaign.definition.trigger
            if trigger.kind not in EVENT_TRIGGER_KINDS:
                continue
            match = matches(trigger, event_type, data)
            if match is not None:
                await fire(self.deps, ctx, campaign, customer_id, match, trigger_window(trigger, at), at)

    async def reschedule(self, ctx: HandlerContext, customer_id: str, at: datetime) -> None:
        campaigns = await repo.active_campaigns(ctx.session, include_builtin=self.deps.include_builtin)
        await reschedule(self.deps, ctx.session, customer_id, campaigns, self.deps.now(at).date())

    # --- score-changes --------------------------------------------------------------------

    async def on_score_change(self, ctx: HandlerContext, event: CloudEvent) -> None:
        data = event.data
        if event.type == "score.changed":
            values: dict[str, Any] = {}
            for key in ("tier", "stage"):
                if data.get(key) is not None:
                    values[key] = str(data[key])
            if data.get("churn_risk") is not None:
                values["churn_risk"] = str(data["churn_risk"])
            if "predicted_next_purchase_at" in data:
                values["predicted_next_purchase_at"] = _time(data.get("predicted_next_purchase_at"))
            if values:
                await repo.upsert_facts(ctx.session, event.subject, values)
            await self.reschedule(ctx, event.subject, event.time)
        elif event.type == "threshold.crossed":
            # Facts first, so an audience filter on the tier sees the tier the customer just reached.
            column = {"tier_up": "tier", "tier_down": "tier", "stage_changed": "stage"}.get(str(data.get("kind")))
            if column and data.get("new") is not None:
                await repo.upsert_facts(ctx.session, event.subject, {column: str(data["new"])})
            elif str(data.get("kind", "")).startswith("churn_risk") and (data.get("level") or data.get("new")):
                await repo.upsert_facts(
                    ctx.session, event.subject, {"churn_risk": str(data.get("level") or data.get("new"))}
                )
            await self.fire_event_triggers(ctx, event.subject, event.type, data, event.time)

    # --- profile-changes ------------------------------------------------------------------

    async def on_profile_change(self, ctx: HandlerContext, event: CloudEvent) -> None:
        if event.type == "customer.erased":
            await self.erase(ctx, str(event.data.get("customer_id") or event.subject))
            return
        joined = joined_ids(event)
        if joined is not None:
            await self.join(ctx, event, *joined)
            return
        if event.type != "profile.updated":
            return
        await self._apply_profile(ctx, event.subject, event.data)
        await self.reschedule(ctx, event.subject, event.time)
        await self.fire_event_triggers(ctx, event.subject, event.type, event.data, event.time)

    async def _apply_profile(self, ctx: HandlerContext, customer_id: str, data: Mapping[str, Any]) -> None:
        metrics = data.get("metrics") or {}
        current = await repo.load_facts(ctx.session, customer_id)
        values: dict[str, Any] = {key: metrics[key] for key in _PLAIN_FACTS if key in metrics}
        for key, column in _TIME_FACTS.items():
            if key in metrics:
                values[column] = _time(metrics[key])
        if "birthday" in metrics:
            values["birthday"] = _date(metrics["birthday"])
        activity = latest(_time(metrics.get("last_login_at")), _time(metrics.get("last_purchase_at")))
        if activity is not None:
            values["last_activity_at"] = latest(activity, current.get("last_activity_at"))
        if isinstance(metrics.get("consents"), Mapping):
            values["consents"] = {**(current.get("consents") or {}), **metrics["consents"]}
        if isinstance(metrics.get("tags"), list):
            values["opted_out"] = bool(OPT_OUT_TAGS & {str(tag) for tag in metrics["tags"]})
        entered = [str(s) for s in data.get("segments_entered") or []]
        left = {str(s) for s in data.get("segments_left") or []}
        if entered or left:
            segments = [s for s in dict.fromkeys([*(current.get("segments") or []), *entered]) if s not in left]
            values["segments"] = segments
        if values:
            await repo.upsert_facts(ctx.session, customer_id, values)

    async def join(self, ctx: HandlerContext, event: CloudEvent, from_id: str, into_id: str) -> None:
        """profile.merged / profile.aliased: `from_id` is the customer `into_id` from now on.

        Its purchases, coupons, actions and A/B arms move over, so loyalty points, frequency caps and conversions
        count the person once; the facts combine (stricter consent wins) and its later events resolve to `into_id`.
        """
        into_id = await aliases.join(ctx.session, from_id, into_id)
        if from_id == into_id:
            return
        facts = merged_facts(await repo.load_facts(ctx.session, into_id), await repo.load_facts(ctx.session, from_id))
        moved_purchases = await identities.move_customer(ctx.session, from_id, into_id)
        await repo.upsert_facts(ctx.session, into_id, facts)
        if moved_purchases:
            change = await recompute_loyalty(self.deps, ctx, replace(event, subject=into_id))
            if change is not None:
                await self.fire_event_triggers(ctx, into_id, change.type, change.data, event.time)
        await self.reschedule(ctx, into_id, event.time)

    async def erase(self, ctx: HandlerContext, customer_id: str) -> None:
        """Right to erasure: nothing about the customer stays in campaign's tables."""
        for table in (scheduled_triggers, coupons, actions, assignments, purchases, loyalty_accounts, customer_facts):
            await ctx.session.execute(delete(table).where(table.c.customer_id == customer_id))
        await aliases.forget(ctx.session, customer_id)

    # --- feedback-events ------------------------------------------------------------------

    async def on_feedback(self, ctx: HandlerContext, event: CloudEvent) -> None:
        if event.type == "feedback.received":
            customer_id = await aliases.lock_and_resolve(ctx.session, event.subject)
            await self.fire_event_triggers(ctx, customer_id, event.type, event.data, event.time)

    # --- customer-events ------------------------------------------------------------------

    async def on_customer_event(self, ctx: HandlerContext, event: CloudEvent) -> None:
        # Upstream systems post under their own ids; the ones profile has joined to a customer count for that one.
        customer_id = await aliases.lock_and_resolve(ctx.session, event.subject)
        if customer_id != event.subject:
            event = replace(event, subject=customer_id)
        data = event.data
        if event.type == "purchase":
            await repo.touch_purchase(ctx.session, event.subject, event.time)
            change = await record_purchase(self.deps, ctx, event)
            await self.reschedule(ctx, event.subject, event.time)
            if change is not None:
                await self.fire_event_triggers(ctx, event.subject, change.type, change.data, event.time)
        elif event.type == "refund":
            change = await record_refund(self.deps, ctx, event)
            if change is not None:
                await self.fire_event_triggers(ctx, event.subject, change.type, change.data, event.time)
        elif event.type == "consent.changed" and data.get("channel"):
            current = await repo.load_facts(ctx.session, event.subject)
            consents = {**(current.get("consents") or {}), str(data["channel"]): bool(data.get("granted"))}
            await repo.upsert_facts(ctx.session, event.subject, {"consents": consents})
        elif event.type == "login":
            await repo.touch_activity(ctx.session, event.subject, event.time)
            await self.reschedule(ctx, event.subject, event.time)
