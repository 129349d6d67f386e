"""Derived event contracts: the `data` of every event a service emits, with the topic it travels on.

Upstream events (what shops and ERPs post to ingest) are in `libs.common.events`; everything the services announce to
each other is declared here, once: `CONTRACTS` maps each type to its model, topic and producer, and a topic's
subscribers take the set of types it carries from `types_on`. docs/events.md shows the same table, and a test keeps
the two equal (`python -m libs.common.contracts` prints it).

Producers build a model and turn it into a CloudEvent with `derived`; the models forbid unknown fields, so a producer
cannot send what no contract declares. Consumers read with `parse` (or `read`), which is tolerant where a rolling
deployment needs it, and strict elsewhere:

- unknown fields are ignored, so a producer may add a field before its consumers know it;
- money may arrive as a JSON number (the shape before money became a decimal string), and is read into a Decimal;
- anything else that does not match (a missing required field, a wrong type) raises `ContractViolation`, a
  `PoisonEvent`, which the consumer loop dead-letters at once with the validation error as the reason.

Money is a Decimal on both sides and a decimal string on the wire (`"120.50"`), so no amount goes through a float.
Times are aware datetimes, RFC 3339 UTC on the wire (`libs.common.envelope.format_time`).
"""

from __future__ import annotations

import builtins
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer, StringConstraints, ValidationError

from libs.common.envelope import CloudEvent, PoisonEvent, derived_event, format_time
from libs.common.topics import CAMPAIGN_ACTIONS, FEEDBACK_EVENTS, INSIGHTS_EVENTS, PROFILE_CHANGES, SCORE_CHANGES


def _decimal_text(value: Decimal) -> str:
    return str(value)


# A Decimal in code and a decimal string on the wire; a JSON number from before is still read (into a Decimal).
Money = Annotated[Decimal, PlainSerializer(_decimal_text, return_type=str, when_used="json")]
# An aware datetime in code, RFC 3339 UTC ("...Z") on the wire, as every other time of the envelope.
UtcTime = Annotated[AwareDatetime, PlainSerializer(format_time, return_type=str, when_used="json")]
CustomerId = Annotated[str, StringConstraints(min_length=1)]
Tier = Literal["low", "medium", "high"]
Stage = Literal["potential", "new", "active", "at_risk", "churned", "reactivated"]
CrossingKind = Literal["tier_up", "tier_down", "stage_changed", "churn_risk_up", "churn_risk_down"]
SentimentLabel = Literal["positive", "neutral", "negative"]
SlaClock = Literal["first_response", "resolution"]
FeedbackScoreType = Literal["nps", "csat", "complaint"]


class ContractViolation(PoisonEvent):
    """A derived event whose `data` does not match the contract of its type: it can never be processed."""


class Contract(BaseModel):
    """Base of every derived event's `data`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fields left out of the wire form while they are None (docs/events.md marks them with "?"); every other field
    # is always present, null included.
    omitted_when_none: ClassVar[frozenset[str]] = frozenset()

    def wire(self) -> dict[str, Any]:
        """The JSON-ready `data` of the event."""
        omitted = {name for name in self.omitted_when_none if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=omitted or None)


class Part(BaseModel):
    """A nested object inside a contract."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- profile-changes ------------------------------------------------------------------------------------------------


class Cause(Part):
    id: str
    type: str


class ProfileMetrics(Part):
    """Everything scoring and campaign need about a customer, so neither reads profile's tables.

    Every field has a default, so a consumer still reads an announcement made before a metric existed; profile always
    sends them all.
    """

    customer_id: str = ""
    purchase_count: int = 0
    total_spend: Money = Decimal(0)
    average_spend: Money | None = None
    net_spend: Money = Decimal(0)
    first_purchase_at: UtcTime | None = None
    last_purchase_at: UtcTime | None = None
    days_since_last_purchase: float | None = None
    typical_interval_days: float | None = None
    mean_interval_days: float | None = None
    interval_std_days: float | None = None
    interval_count: int = 0
    refund_count: int = 0
    refund_amount: Money = Decimal(0)
    login_count: int = 0
    last_login_at: UtcTime | None = None
    days_since_last_login: float | None = None
    logins_30d: int = 0
    logins_90d: int = 0
    logins_30d_by_channel: dict[str, int] = {}
    logins_90d_by_channel: dict[str, int] = {}
    purchases_30d: int = 0
    spend_30d: Money = Decimal(0)
    baseline_days: int = 0
    login_ratio_30_90: float | None = None
    purchase_ratio_30_90: float | None = None
    spend_ratio_30_90: float | None = None
    open_tickets: int = 0
    last_ticket_priority: str | None = None
    last_nps: int | None = None
    last_csat: int | None = None
    favourite_category: str | None = None
    region: str | None = None
    tags: list[str] = []
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    birthday: date | None = None
    industry: str | None = None
    timezone: str | None = None
    consents: dict[str, bool] = {}


class ProfileUpdated(Contract):
    """A profile changed; announced at most once per customer per consumer batch (`cause` is the last change)."""

    cause: Cause
    # The number of events the profile is built from: it grows with every event applied, whatever their order, so a
    # consumer keeps the document of the highest version (a late event has an old time). 0 in announcements from
    # before it was sent.
    version: int = 0
    changed: list[str]
    metrics: ProfileMetrics
    segments_entered: list[str] = []
    segments_left: list[str] = []


class ProfileMerged(Contract):
    """Two profiles are one person: `merged_id`'s profile was folded into `survivor_id` (the subject)."""

    survivor_id: CustomerId
    merged_id: CustomerId


class ProfileAliased(Contract):
    """An id with no profile of its own is this customer (the subject); its later events are the customer's."""

    customer_id: CustomerId
    alias_id: CustomerId


class CustomerErased(Contract):
    """One per id the person was known under; the event's `time` is the erasure instant."""

    customer_id: CustomerId


# --- score-changes --------------------------------------------------------------------------------------------------


class Reason(Part):
    """Why a score is what it is, with the numbers behind it; `contribution` only on churn reasons."""

    code: str
    message: str
    numbers: dict[str, float | None] = {}
    contribution: float | None = None


class Rfm(Part):
    r: int
    f: int
    m: int
    score: float
    code: str
    recency_days: float | None = None
    frequency: float | None = None
    monetary: float | None = None


class ScoreChanged(Contract):
    """A customer's score changed materially."""

    tier: Tier
    stage: Stage
    churn_risk: float | None
    reasons: list[Reason]
    clv: Money | None
    value: Reason
    total_spend: Money
    expected_purchases_30d: float | None
    expected_purchases_90d: float | None
    predicted_next_purchase_at: UtcTime | None
    model_version: int | None
    rfm: Rfm


class ThresholdCrossed(Contract):
    """A tier, stage or churn level was crossed; for churn crossings `old`/`new` are risks and `level` is set."""

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"level"})

    kind: CrossingKind
    old: str | float | None
    new: str | float
    level: float | None = None
    reasons: list[Reason]


class FrequencyBucket(Part):
    calibration_frequency: str
    customers: int
    predicted_mean: float | None
    actual_mean: float


class DriftDetected(Contract):
    """A refit's chosen purchase model missed the holdout's total repeat purchase days by more than the threshold
    (relative); subject = `model:<version>` (no customer), time = the refit's clock."""

    model_version: int
    model: str
    threshold: float
    total_relative_error: float
    predicted_total: float
    actual_total: float
    rmse: float | None
    by_frequency: list[FrequencyBucket]
    time_unit: Literal["day"]
    holdout_days: float


# --- feedback-events ------------------------------------------------------------------------------------------------


class FeedbackReceived(Contract):
    """A survey score (one event per score type) or a complaint (a ticket opened)."""

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"score", "category", "survey_id"})

    score_type: FeedbackScoreType
    score: int | None = None
    category: str | None = None
    sentiment: SentimentLabel
    survey_id: str | None = None


class FeedbackContacted(Contract):
    """An account manager reached out to the customer (the console's "mark contacted", or a CRM); once per contact."""

    channel: Literal["phone", "email", "sms", "wecom", "visit", "other"]
    outcome: Literal["reached", "no_answer", "left_message", "declined", "resolved"]
    contacted_by: str


class SlaBreached(Contract):
    """A ticket missed an SLA target; `target_s` and `elapsed_s` are whole seconds."""

    ticket_id: str
    clock: SlaClock
    tier: str
    priority: str
    target_s: int
    elapsed_s: int


# --- campaign-actions -----------------------------------------------------------------------------------------------


class CouponIssued(Contract):
    campaign_id: str
    code: str
    discount_type: Literal["amount", "percent"]
    value: Money
    currency: str | None
    expires_at: UtcTime


class AlertRaised(Contract):
    campaign_id: str
    to: str | None
    channel: str | None
    message: str | None


class MessageSent(Contract):
    campaign_id: str
    channel: str | None
    variant: str | None


class LoyaltyLevelChanged(Contract):
    old: str
    new: str


# --- insights-events ------------------------------------------------------------------------------------------------


class KpiAnomaly(Contract):
    """A KPI of a closed period deviates from its own baseline; subject = the KPI's name (no customer), time = the end
    of the period; once per KPI and period. `deviation` is (value - baseline) / |baseline|."""

    kpi: str
    period: Literal["week", "month", "quarter"]
    period_start: date
    period_label: str
    value: float
    baseline: float
    deviation: float
    baseline_periods: int
    threshold: float


class ChurnReportReady(Contract):
    """The churned-customers report of a closed period is ready (`GET /v1/reports/churned?period=&at=`);
    subject = "churned", time = the end of the period; once per period."""

    period: Literal["week", "month", "quarter"]
    period_start: date
    period_label: str
    churned: int
    active_base: int
    clv_lost: float
    report: str


class SegmentsChanged(Contract):
    """A customer entered or left segments computed outside profile (insights' behavioural clusters); campaign
    applies it to the customer's segments as it does those of `profile.updated`."""

    segments_entered: list[str]
    segments_left: list[str]
    fit_id: str


# --- the registry ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventContract:
    type: str
    topic: str
    producer: str
    model: builtins.type[Contract]


CONTRACTS: Mapping[str, EventContract] = {
    contract.type: contract
    for contract in (
        EventContract("profile.updated", PROFILE_CHANGES, "profile", ProfileUpdated),
        EventContract("profile.merged", PROFILE_CHANGES, "profile", ProfileMerged),
        EventContract("profile.aliased", PROFILE_CHANGES, "profile", ProfileAliased),
        EventContract("customer.erased", PROFILE_CHANGES, "profile", CustomerErased),
        EventContract("score.changed", SCORE_CHANGES, "scoring", ScoreChanged),
        EventContract("threshold.crossed", SCORE_CHANGES, "scoring", ThresholdCrossed),
        EventContract("scoring.drift_detected", SCORE_CHANGES, "scoring", DriftDetected),
        EventContract("feedback.received", FEEDBACK_EVENTS, "feedback", FeedbackReceived),
        EventContract("feedback.contacted", FEEDBACK_EVENTS, "feedback", FeedbackContacted),
        EventContract("sla.breached", FEEDBACK_EVENTS, "feedback", SlaBreached),
        EventContract("coupon.issued", CAMPAIGN_ACTIONS, "campaign", CouponIssued),
        EventContract("alert.raised", CAMPAIGN_ACTIONS, "campaign", AlertRaised),
        EventContract("message.sent", CAMPAIGN_ACTIONS, "campaign", MessageSent),
        EventContract("loyalty.level_changed", CAMPAIGN_ACTIONS, "campaign", LoyaltyLevelChanged),
        EventContract("kpi.anomaly", INSIGHTS_EVENTS, "insights", KpiAnomaly),
        EventContract("churn.report_ready", INSIGHTS_EVENTS, "insights", ChurnReportReady),
        EventContract("segments.changed", INSIGHTS_EVENTS, "insights", SegmentsChanged),
    )
}
_TYPE_OF: dict[type[Contract], str] = {contract.model: contract.type for contract in CONTRACTS.values()}


def types_on(topic: str) -> frozenset[str]:
    """The derived event types a topic carries: what a subscriber to all of it lists as its `event_types`."""
    return frozenset(contract.type for contract in CONTRACTS.values() if contract.topic == topic)


def contract_of(model: type[Contract]) -> EventContract:
    return CONTRACTS[_TYPE_OF[model]]


# --- building and reading -------------------------------------------------------------------------------------------


def derived(
    data: Contract, *, cause: CloudEvent | str, source: str, subject: str, time: datetime
) -> tuple[str, CloudEvent]:
    """(topic, event) for `data`: the type and topic come from the contract, the id is deterministic."""
    contract = contract_of(type(data))
    event = derived_event(cause=cause, source=source, type=contract.type, subject=subject, time=time, data=data.wire())
    return contract.topic, event


M = TypeVar("M", bound=Contract)


def parse(event: CloudEvent, model: type[M]) -> M:
    """The event's `data` as `model`; raises ContractViolation (dead-lettered) when it does not match."""
    try:
        return model.model_validate(event.data, extra="ignore")
    except ValidationError as exc:
        raise ContractViolation(_violation(event, model, exc)) from exc


def read(event: CloudEvent) -> Contract:
    """The event's `data` as the model of its type; ContractViolation for a type no contract declares."""
    contract = CONTRACTS.get(event.type)
    if contract is None:
        raise ContractViolation(f"{event.type!r} is not a derived event type")
    return parse(event, contract.model)


def _violation(event: CloudEvent, model: type[Contract], exc: ValidationError) -> str:
    problems = "; ".join(
        f"data.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    )
    return f"{event.type} {event.id} does not match {model.__name__}: {problems}"


# --- the table of docs/events.md ------------------------------------------------------------------------------------


def _describe(annotation: Any) -> str:
    """How a field's type reads in the table: literals spelled out, nested objects opened, money named."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *metadata = get_args(annotation)
        if base is Decimal:
            return "decimal string"
        if any(isinstance(item, PlainSerializer) for item in metadata) or base is datetime:
            return "time"
        return _describe(base)
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        text = " | ".join(_describe(arg) for arg in options)
        return text + " | null" if len(options) < len(get_args(annotation)) else text
    if origin is Literal:
        return "|".join(f'"{value}"' for value in get_args(annotation))
    if origin is list:
        return f"[{_describe(get_args(annotation)[0])}]"
    if origin is dict:
        key, value = get_args(annotation)
        return f"{{{_describe(key)}: {_describe(value)}}}"
    if isinstance(annotation, type) and issubclass(annotation, Part):
        if annotation is ProfileMetrics:
            return "{metrics below}"
        return "{" + ", ".join(_field(annotation, name, nested=True) for name in annotation.model_fields) + "}"
    if annotation is Decimal:
        return "decimal string"
    if annotation is AwareDatetime or annotation is datetime:
        return "time"
    return {str: "string", int: "integer", float: "number", bool: "boolean", date: "date"}.get(annotation, "?")


def _field(model: type[BaseModel], name: str, *, nested: bool = False) -> str:
    info = model.model_fields[name]
    optional = name in getattr(model, "omitted_when_none", frozenset())
    text = f'"{name}"{"?" if optional else ""}'
    if info.annotation is str or (nested and info.annotation in (int, float)):
        return text
    return f"{text}: {_describe(typing.cast(Any, info.annotation))}"


def events_table() -> str:
    """The table of derived events in docs/events.md, generated from the contracts."""
    lines = ["| type | topic | emitted by | data |", "|---|---|---|---|"]
    for contract in CONTRACTS.values():
        fields = ", ".join(_field(contract.model, name) for name in contract.model.model_fields)
        cell = "{" + fields.replace("|", "\\|") + "}"  # a pipe would end the cell, even inside a code span
        lines.append(f"| `{contract.type}` | `{contract.topic}` | {contract.producer} | `{cell}` |")
    return "\n".join(lines)


def metrics_list() -> str:
    """The fields of `profile.updated` `metrics`, for docs/events.md."""
    return ", ".join(f"`{_field(ProfileMetrics, name)}`" for name in ProfileMetrics.model_fields)


if __name__ == "__main__":
    print(events_table())
    print()
    print(metrics_list())
