"""Campaign definition: the stored model and, unchanged, the body of the campaigns HTTP API.

Validation errors must point at the offending field (RFC 9457 problem details name it), so
cross-field rules are written as field validators on the field that is wrong, not as model
validators, which would report the error against the parent object.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from libs.common.events import NO_NUL_PATTERN
from services.campaign.domain.templates import validate_template

# No string may carry U+0000: PostgreSQL's text and jsonb cannot hold it (a 500 before, found by fuzzing).
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=NO_NUL_PATTERN)]
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NO_NUL_PATTERN)
]
Template = Annotated[str, StringConstraints(min_length=1, max_length=10_000, pattern=NO_NUL_PATTERN)]

Stage = Literal["potential", "new", "active", "at_risk", "churned", "reactivated"]
Crossing = Literal["tier_up", "tier_down", "churn_risk_up", "churn_risk_down"]
LoyaltyLevel = Literal["normal", "silver", "gold"]
MessageChannel = Literal["email", "sms", "wecom", "webhook"]
Status = Literal["draft", "active", "paused"]

# The name reserved for the control group; a variant may not take it.
HOLDOUT = "holdout"


class _Model(BaseModel):
    # Unknown keys are rejected so that a typo ("max_send") is reported instead of silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- triggers -------------------------------------------------------------------------------


class ThresholdCrossedTrigger(_Model):
    kind: Literal["threshold_crossed"]
    crossing: Crossing
    # Optional narrowing: the new tier / churn-risk level must equal this (None = any).
    to: Identifier | None = None


class StageEnteredTrigger(_Model):
    kind: Literal["stage_entered"]
    stage: Stage


class SegmentEnteredTrigger(_Model):
    kind: Literal["segment_entered"]
    segment: Identifier


class DaysAfterPurchaseTrigger(_Model):
    kind: Literal["days_after_purchase"]
    anchor: Literal["first", "last"]
    # 3/30/90 are the usual onboarding and win-back steps, but any day within a year is allowed.
    days: int = Field(ge=1, le=365)


class BirthdayTrigger(_Model):
    kind: Literal["birthday"]


class ReplenishmentDueTrigger(_Model):
    kind: Literal["replenishment_due"]
    days_before: int = Field(default=3, ge=0, le=365)


class InactivityTrigger(_Model):
    kind: Literal["inactivity"]
    days: int = Field(ge=1, le=3650)


class LowNpsTrigger(_Model):
    kind: Literal["low_nps"]
    # NPS detractors are 0-6 by definition, hence the default.
    max_score: int = Field(default=6, ge=0, le=10)


class LoyaltyLevelChangedTrigger(_Model):
    kind: Literal["loyalty_level_changed"]
    to: LoyaltyLevel | None = None


Trigger = Annotated[
    ThresholdCrossedTrigger
    | StageEnteredTrigger
    | SegmentEnteredTrigger
    | DaysAfterPurchaseTrigger
    | BirthdayTrigger
    | ReplenishmentDueTrigger
    | InactivityTrigger
    | LowNpsTrigger
    | LoyaltyLevelChangedTrigger,
    Field(discriminator="kind"),
]

EVENT_TRIGGER_KINDS = frozenset(
    {"threshold_crossed", "stage_entered", "segment_entered", "low_nps", "loyalty_level_changed"}
)
TIME_TRIGGER_KINDS = frozenset({"days_after_purchase", "birthday", "replenishment_due", "inactivity"})


# --- audience -------------------------------------------------------------------------------


class Audience(_Model):
    """Every given list must match (AND); within a list any entry matches (OR). None = no filter."""

    tiers: list[Identifier] | None = None
    segments: list[Identifier] | None = None
    regions: list[Identifier] | None = None


# --- actions --------------------------------------------------------------------------------


class CouponAction(_Model):
    type: Literal["coupon"]
    kind: Literal["amount", "percent"]
    value: Decimal = Field(gt=0, max_digits=14, decimal_places=4)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = Field(
        default=None, validate_default=True
    )
    valid_days: int = Field(default=30, ge=1, le=3650)

    @field_validator("value")
    @classmethod
    def _percent_at_most_100(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if info.data.get("kind") == "percent" and value > 100:
            raise ValueError("a percent coupon cannot exceed 100")
        return value

    @field_validator("currency")
    @classmethod
    def _amount_needs_currency(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "amount" and value is None:
            raise ValueError("an amount coupon needs a currency")
        return value


class AlertAction(_Model):
    type: Literal["alert"]
    to: Literal["account_manager"] = "account_manager"
    channel: Literal["email", "webhook"] = "email"
    message: Template

    _template = field_validator("message")(validate_template)


class MessageAction(_Model):
    type: Literal["message"]
    channel: MessageChannel
    subject: Template | None = Field(default=None, validate_default=True)
    body: Template

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("channel") == "email":
                raise ValueError("an email message needs a subject")
            return None
        return validate_template(value)

    _body = field_validator("body")(validate_template)


Action = Annotated[CouponAction | AlertAction | MessageAction, Field(discriminator="type")]
# Marketing actions reach the customer and so need consent; the others do not (see guards.py).
MARKETING_ACTION_TYPES = frozenset({"message"})


# --- schedule, budget, experiment ------------------------------------------------------------


class Schedule(_Model):
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts_at = info.data.get("starts_at")
        if value is not None and starts_at is not None and value <= starts_at:
            raise ValueError("ends_at must be after starts_at")
        return value


class Budget(_Model):
    max_sends: int | None = Field(default=None, ge=1)
    # Caps the total face value of amount coupons; percent coupons only count towards max_sends.
    max_coupon_value: Decimal | None = Field(default=None, gt=0, validate_default=True)

    @field_validator("max_coupon_value")
    @classmethod
    def _some_limit(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is None and info.data.get("max_sends") is None:
            raise ValueError("a budget needs max_sends and/or max_coupon_value")
        return value


class Variant(_Model):
    name: Identifier
    weight: float = Field(default=1.0, gt=0)
    # Replaces the campaign's actions for customers in this variant; None = the campaign's actions.
    actions: list[Action] | None = Field(default=None, min_length=1)

    @field_validator("name")
    @classmethod
    def _not_holdout(cls, value: str) -> str:
        if value == HOLDOUT:
            raise ValueError(f"'{HOLDOUT}' is reserved for the control group")
        return value


class CampaignDefinition(_Model):
    name: Name
    trigger: Trigger
    audience: Audience = Field(default_factory=Audience)
    actions: list[Action] = Field(min_length=1, max_length=10)
    schedule: Schedule | None = None
    budget: Budget | None = None
    status: Status = "draft"
    variants: list[Variant] = Field(default_factory=list, max_length=20)
    holdout_percent: float = Field(default=0.0, ge=0, le=50)
    conversion_window_days: int = Field(default=14, ge=1, le=365)

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, value: list[Variant]) -> list[Variant]:
        names = [variant.name for variant in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate variant name(s): {', '.join(duplicates)}")
        return value

    def actions_for(self, variant: str) -> list[Action]:
        """The actions a customer assigned to `variant` receives (none for the holdout)."""
        if variant == HOLDOUT:
            return []
        for candidate in self.variants:
            if candidate.name == variant and candidate.actions is not None:
                return list(candidate.actions)
        return list(self.actions)
