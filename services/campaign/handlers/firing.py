"""A campaign fires for a customer: assign the A/B group, run the guards, decide each action.

Called inside the consumer's (or the scheduler's) transaction, so the decision, the idempotency key,
the coupon and its `coupon.issued` event commit together with the inbox entry. Messages and alerts
are only recorded here (`pending`); the sender delivers them, because an external call must never
sit inside an event handler that Kafka might redeliver.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from libs.common import metrics
from libs.common.consumer import HandlerContext
from libs.common.contracts import CouponIssued, derived
from services.campaign.adapters import campaigns
from services.campaign.adapters.campaigns import StoredCampaign
from services.campaign.adapters.tables import coupons
from services.campaign.domain.ab import assign_variant
from services.campaign.domain.coupons import issue_coupon
from services.campaign.domain.definitions import HOLDOUT, Action, AlertAction, CouponAction, MessageAction
from services.campaign.domain.guards import Defer, GuardContext, Skip, evaluate_guards
from services.campaign.domain.idempotency import idempotency_key
from services.campaign.domain.templates import render
from services.campaign.domain.triggers import TriggerMatch
from services.campaign.handlers.deps import SOURCE, CampaignDeps

SERVICE = "campaign"

ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def profile_fields(facts: Mapping[str, Any], points: int) -> dict[str, object]:
    """The fields templates may use (domain/templates.PLACEHOLDERS)."""
    return {
        "name": facts.get("name"),
        "favourite_category": facts.get("favourite_category"),
        "tier": facts.get("tier"),
        "points": points,
    }


async def guard_context(
    deps: CampaignDeps,
    ctx: HandlerContext,
    campaign_id: str,
    facts: Mapping[str, Any],
    now: datetime,
    *,
    exclude_action: int | None = None,
    budgeted: bool = True,
) -> GuardContext:
    since = now - deps.guard_policy.frequency_window
    previous = await campaigns.marketing_send_times(ctx.session, facts["customer_id"], since, exclude=exclude_action)
    # Counting a campaign's sends and coupon value scans all it ever did: only a budget needs them.
    sends, coupon_value = await campaigns.campaign_counters(ctx.session, campaign_id) if budgeted else (0, Decimal(0))
    return GuardContext(
        now=now,
        opted_out=bool(facts.get("opted_out")),
        consents=dict(facts.get("consents") or {}),
        previous_sends=previous,
        timezone=facts.get("timezone"),
        tier=facts.get("tier"),
        segments=list(facts.get("segments") or []),
        region=facts.get("region"),
        campaign_sends=sends,
        campaign_coupon_value=coupon_value,
    )


def _address(action: MessageAction, facts: Mapping[str, Any]) -> str | None:
    if action.channel == "email":
        return facts.get("email")
    if action.channel in ("sms", "wecom"):
        return facts.get("phone")
    return str(facts["customer_id"])  # a generic webhook addresses the customer by id


async def fire(
    deps: CampaignDeps,
    ctx: HandlerContext,
    campaign: StoredCampaign,
    customer_id: str,
    match: TriggerMatch,
    window: str,
    at: datetime,
) -> None:
    """`at` is the trigger's business time (event time, or fire-at for scheduled triggers)."""
    definition = campaign.definition
    if definition.budget is not None:
        # Serialise deciders of a budgeted campaign so two partitions cannot both spend the last unit.
        await campaigns.load_campaign(ctx.session, campaign.id, lock=True)
    variant = assign_variant(campaign.id, customer_id, definition)
    await campaigns.record_assignment(ctx.session, campaign.id, customer_id, variant, at)
    trigger = {"kind": match.kind, "window": window, "at": at.isoformat(), "details": dict(match.details)}
    now = deps.now(at)
    if variant == HOLDOUT:
        await campaigns.insert_action(
            ctx.session,
            {
                "idempotency_key": idempotency_key(campaign.id, customer_id, window),
                "customer_id": customer_id,
                "campaign_id": campaign.id,
                "kind": "holdout",
                "variant": variant,
                "status": "skipped",
                "reason": "holdout",
                "payload": {},
                "trigger": trigger,
                "decided_at": now,
            },
        )
        return
    for index, action in enumerate(definition.actions_for(variant)):
        key = idempotency_key(campaign.id, customer_id, window, action_index=index)
        if await campaigns.action_exists(ctx.session, key):
            continue  # decided before (redelivery, replay, or a second replica): never twice
        base = {
            "idempotency_key": key,
            "customer_id": customer_id,
            "campaign_id": campaign.id,
            "kind": action.type,
            "channel": getattr(action, "channel", None),
            "variant": variant,
            "trigger": trigger,
            "decided_at": now,
        }
        created = await decide(deps, ctx, campaign, action, base, now)
        if created and deps.settings.clock_mode == "live":
            # Live, `at` is the source event's own time (purchase, crossing, feedback) or the scheduled moment.
            latency = (deps.clock() - at).total_seconds()
            metrics.ACTION_LATENCY.labels(SERVICE, action.type).observe(max(0.0, latency))


async def evaluate(
    deps: CampaignDeps,
    ctx: HandlerContext,
    campaign: StoredCampaign,
    action: Action,
    customer_id: str,
    now: datetime,
    *,
    exclude_action: int | None = None,
) -> tuple[Skip | Defer | None, dict[str, Any]]:
    """The guards' verdict on the customer's current facts, and those facts."""
    facts = await campaigns.load_facts(ctx.session, customer_id)
    budgeted = campaign.definition.budget is not None
    context = await guard_context(deps, ctx, campaign.id, facts, now, exclude_action=exclude_action, budgeted=budgeted)
    return evaluate_guards(campaign.definition, action, context, deps.guard_policy), facts


def verdict_values(outcome: Skip | Defer, action: Action) -> dict[str, Any]:
    """Columns recording a skip (with its reason) or a deferral (quiet hours postpone, never cancel)."""
    payload = {"action": action.model_dump(mode="json"), **outcome.details}
    if isinstance(outcome, Skip):
        return {"status": "skipped", "reason": outcome.reason, "payload": payload, "next_attempt_at": None}
    return {"status": "deferred", "reason": outcome.reason, "payload": payload, "next_attempt_at": outcome.defer_until}


async def decide(
    deps: CampaignDeps,
    ctx: HandlerContext,
    campaign: StoredCampaign,
    action: Action,
    base: dict[str, Any],
    now: datetime,
) -> bool:
    """True when the decision created the coupon, or a message or alert due for delivery."""
    outcome, facts = await evaluate(deps, ctx, campaign, action, base["customer_id"], now)
    if outcome is not None:
        await campaigns.insert_action(ctx.session, {**base, **verdict_values(outcome, action)})
        return False
    if isinstance(action, CouponAction):
        return await _issue_coupon(ctx, campaign, action, base, now)
    values = await delivery_values(ctx, action, base["customer_id"], facts, now)
    return await campaigns.insert_action(ctx.session, {**base, **values}) is not None and values["status"] == "pending"


async def _issue_coupon(
    ctx: HandlerContext, campaign: StoredCampaign, action: CouponAction, base: dict[str, Any], now: datetime
) -> bool:
    coupon = issue_coupon(action, now)
    details = {
        "code": coupon.code,
        "discount_type": coupon.kind,
        "value": float(coupon.value),
        "currency": coupon.currency,
        "expires_at": coupon.expires_at.isoformat(),
    }
    action_id = await campaigns.insert_action(
        ctx.session, {**base, "status": "issued", "payload": details, "sent_at": now}
    )
    if action_id is None:
        return False
    await ctx.session.execute(
        coupons.insert().values(
            code=coupon.code,
            action_id=action_id,
            customer_id=base["customer_id"],
            campaign_id=campaign.id,
            variant=base["variant"],
            discount_type=coupon.kind,
            value=coupon.value,
            currency=coupon.currency,
            issued_at=coupon.issued_at,
            expires_at=coupon.expires_at,
        )
    )
    # Storing the coupon is the effect itself, so the event goes out in this same transaction.
    issued = CouponIssued(
        campaign_id=campaign.id,
        code=coupon.code,
        discount_type=coupon.kind,
        value=coupon.value,
        currency=coupon.currency,
        expires_at=coupon.expires_at,
    )
    await ctx.emit(
        *derived(issued, cause=base["idempotency_key"], source=SOURCE, subject=base["customer_id"], time=now)
    )
    return True


async def delivery_values(
    ctx: HandlerContext,
    action: MessageAction | AlertAction,
    customer_id: str,
    facts: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """A `pending` row with the personalised text, rendered now so the sender needs no facts."""
    fields = profile_fields(facts, await campaigns.loyalty_points(ctx.session, customer_id))
    spec = action.model_dump(mode="json")
    if isinstance(action, AlertAction):
        payload: dict[str, Any] = {"action": spec, "to": action.to, "body": render(action.message, fields)}
    else:
        to = _address(action, facts)
        if not to:
            return {"status": "skipped", "reason": "no_address", "payload": {"action": spec}, "next_attempt_at": None}
        payload = {
            "action": spec,
            "to": to,
            "subject": render(action.subject, fields) if action.subject else None,
            "body": render(action.body, fields),
        }
    return {"status": "pending", "reason": None, "payload": payload, "next_attempt_at": now}


def parse_action(spec: Mapping[str, Any]) -> Action:
    return ACTION_ADAPTER.validate_python(spec)
