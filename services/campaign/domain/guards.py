"""Guards that stand between a trigger match and an action.

Which guards apply to which action:
- global opt-out: everything that reaches the customer (messages and coupons); not internal
  alerts, because an at-risk customer who opted out of marketing still deserves an account
  manager's attention, and that attention is not contact.
- channel consent, frequency cap and quiet hours: marketing messages only. A coupon has no
  channel of its own (it is attached to the account or carried by a message, which is gated),
  and an alert goes to our own staff.
- status, budget, schedule window and audience: every action of the campaign.

The hard skips are checked before quiet hours, so that we only defer a send that would
otherwise go ahead; after a deferral the caller evaluates all guards again at `defer_until`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.campaign.domain.definitions import (
    Action,
    CampaignDefinition,
    CouponAction,
    MessageAction,
)

SkipCode = Literal[
    "campaign_not_active",
    "opted_out",
    "no_consent",
    "frequency_cap",
    "budget_exhausted",
    "before_schedule",
    "after_schedule",
    "audience_mismatch",
]


@dataclass(frozen=True)
class Skip:
    reason: SkipCode
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Defer:
    """Not now, but later: re-evaluate all guards at `defer_until` (UTC)."""

    defer_until: datetime
    reason: Literal["quiet_hours"] = "quiet_hours"
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardPolicy:
    max_messages: int = 2
    frequency_window: timedelta = timedelta(days=7)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    # Customers without a known time zone get quiet hours in this one.
    default_timezone: str = "UTC"


DEFAULT_POLICY = GuardPolicy()


@dataclass(frozen=True)
class GuardContext:
    """Everything the guards need, gathered by the caller; `now` is timezone-aware."""

    now: datetime
    opted_out: bool = False
    consents: Mapping[str, bool] = field(default_factory=dict)
    # Times of previous marketing messages to this customer (any campaign).
    previous_sends: Sequence[datetime] = ()
    timezone: str | None = None
    tier: str | None = None
    segments: Sequence[str] = ()
    region: str | None = None
    # Campaign-wide counters so far.
    campaign_sends: int = 0
    campaign_coupon_value: Decimal = Decimal(0)


def _check_status(campaign: CampaignDefinition) -> Skip | None:
    if campaign.status != "active":
        return Skip("campaign_not_active", {"status": campaign.status})
    return None


def _check_opt_out(action: Action, ctx: GuardContext) -> Skip | None:
    if ctx.opted_out and action.type != "alert":
        return Skip("opted_out", {"action": action.type})
    return None


def _check_consent(action: Action, ctx: GuardContext) -> Skip | None:
    # No recorded consent means no consent: the safe default for marketing contact.
    if isinstance(action, MessageAction) and not ctx.consents.get(action.channel, False):
        return Skip("no_consent", {"channel": action.channel})
    return None


def _check_frequency(action: Action, ctx: GuardContext, policy: GuardPolicy) -> Skip | None:
    if not isinstance(action, MessageAction):
        return None
    since = ctx.now - policy.frequency_window
    # Rolling window (since, now]: a send exactly one window ago no longer counts.
    recent = sum(1 for sent in ctx.previous_sends if since < sent <= ctx.now)
    if recent >= policy.max_messages:
        return Skip(
            "frequency_cap",
            {
                "recent": recent,
                "max": policy.max_messages,
                "window_days": policy.frequency_window.total_seconds() / 86400,
            },
        )
    return None


def _check_budget(campaign: CampaignDefinition, action: Action, ctx: GuardContext) -> Skip | None:
    budget = campaign.budget
    if budget is None:
        return None
    if budget.max_sends is not None and ctx.campaign_sends >= budget.max_sends:
        return Skip("budget_exhausted", {"limit": "max_sends", "max_sends": budget.max_sends})
    if (
        budget.max_coupon_value is not None
        and isinstance(action, CouponAction)
        and action.kind == "amount"
        and ctx.campaign_coupon_value + action.value > budget.max_coupon_value
    ):
        return Skip(
            "budget_exhausted",
            {
                "limit": "max_coupon_value",
                "max_coupon_value": str(budget.max_coupon_value),
                "spent": str(ctx.campaign_coupon_value),
            },
        )
    return None


def _check_schedule(campaign: CampaignDefinition, ctx: GuardContext) -> Skip | None:
    schedule = campaign.schedule
    if schedule is None:
        return None
    if schedule.starts_at is not None and ctx.now < schedule.starts_at:
        return Skip("before_schedule", {"starts_at": schedule.starts_at.isoformat()})
    if schedule.ends_at is not None and ctx.now >= schedule.ends_at:
        return Skip("after_schedule", {"ends_at": schedule.ends_at.isoformat()})
    return None


def _check_audience(campaign: CampaignDefinition, ctx: GuardContext) -> Skip | None:
    audience = campaign.audience
    if audience.tiers is not None and ctx.tier not in audience.tiers:
        return Skip("audience_mismatch", {"filter": "tiers", "value": ctx.tier})
    if audience.segments is not None and not set(audience.segments) & set(ctx.segments):
        return Skip("audience_mismatch", {"filter": "segments", "value": sorted(ctx.segments)})
    if audience.regions is not None and ctx.region not in audience.regions:
        return Skip("audience_mismatch", {"filter": "regions", "value": ctx.region})
    return None


def _zone(name: str | None, policy: GuardPolicy) -> ZoneInfo:
    for candidate in (name, policy.default_timezone):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_hours_end(now: datetime, timezone: str | None, policy: GuardPolicy = DEFAULT_POLICY) -> datetime | None:
    """If `now` is within quiet hours in the customer's zone, when they end (UTC); else None."""
    zone = _zone(timezone, policy)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    start, end = policy.quiet_start, policy.quiet_end
    if start == end:
        return None
    crosses_midnight = start > end
    if crosses_midnight:
        quiet = clock >= start or clock < end
    else:
        quiet = start <= clock < end
    if not quiet:
        return None
    end_day = local.date()
    if crosses_midnight and clock >= start:
        end_day += timedelta(days=1)
    # Built from the wall-clock date and time, so a DST change overnight is handled by zoneinfo.
    return datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)


def _check_quiet_hours(action: Action, ctx: GuardContext, policy: GuardPolicy) -> Defer | None:
    if not isinstance(action, MessageAction):
        return None
    until = quiet_hours_end(ctx.now, ctx.timezone, policy)
    if until is None:
        return None
    return Defer(until, details={"timezone": str(_zone(ctx.timezone, policy))})


def evaluate_guards(
    campaign: CampaignDefinition,
    action: Action,
    ctx: GuardContext,
    policy: GuardPolicy = DEFAULT_POLICY,
) -> Skip | Defer | None:
    """The first reason not to perform `action` now, or None to go ahead."""
    if ctx.now.tzinfo is None:
        raise ValueError("GuardContext.now must be timezone-aware")
    return (
        _check_status(campaign)
        or _check_opt_out(action, ctx)
        or _check_consent(action, ctx)
        or _check_frequency(action, ctx, policy)
        or _check_budget(campaign, action, ctx)
        or _check_schedule(campaign, ctx)
        or _check_audience(campaign, ctx)
        or _check_quiet_hours(action, ctx, policy)
    )
