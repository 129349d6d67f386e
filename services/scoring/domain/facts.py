"""What scoring keeps per customer: purchase facts, `profile.updated` metrics and feedback events.

Purchase facts (orders, spend, first and last purchase, purchase days, repeat-day spend) are a summary of the
purchases scoring stores itself, one row per order id (adapters/scores.py): a set, so the summary does not depend on
the order or number of deliveries. Profile sends its whole metrics document on every change; the document applied
is the one of the highest profile version (profile stamps the number of events the profile was built from, which
only grows), never the newest in event time: a late purchase produces a newer document about an older event.
Feedback signals arrive as individual events and are folded in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from libs.common.envelope import EnvelopeError, format_time, parse_time
from services.scoring.domain.customer_score import CustomerFacts

# Complaints kept per customer: the newest by time, so the kept set is the same whatever the arrival order.
MAX_COMPLAINTS_KEPT = 50


@dataclass(frozen=True)
class StoredFacts:
    customer_id: str
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    purchase_count: int = 0
    total_spend: float = 0.0
    typical_interval_days: float | None = None
    last_login_at: datetime | None = None
    login_ratio_30_90: float | None = None
    purchase_ratio_30_90: float | None = None
    spend_ratio_30_90: float | None = None
    open_tickets: int = 0
    last_complaint_at: datetime | None = None
    recent_complaints: int = 0  # complaints of the newest open stretch (derived from `complaints`)
    sla_breached_at: datetime | None = None
    last_nps: int | None = None
    last_nps_at: datetime | None = None  # time of feedback's answer; None while only profile's copy is known
    profile_at: datetime | None = None  # event time of the metrics document applied
    last_event_at: datetime | None = None  # newest event time seen for this customer (replay clock)
    purchase_days: int = 0
    repeat_day_spend: float = 0.0
    profile_version: int | None = None  # version of the metrics document applied
    # the newest complaints (event id -> RFC 3339 time), a set so that order and redelivery do not matter
    complaints: dict[str, str] = field(default_factory=dict)

    def customer_facts(self, as_of: datetime, complaint_open_days: float, sla_breach_days: float) -> CustomerFacts:
        complaints = 0
        if self.last_complaint_at is not None and as_of - self.last_complaint_at <= timedelta(days=complaint_open_days):
            complaints = self.recent_complaints
        breached = self.sla_breached_at is not None and as_of - self.sla_breached_at <= timedelta(days=sla_breach_days)
        return CustomerFacts(
            customer_id=self.customer_id,
            first_purchase_at=self.first_purchase_at,
            last_purchase_at=self.last_purchase_at,
            purchase_count=self.purchase_count,
            total_spend=self.total_spend,
            typical_interval_days=self.typical_interval_days,
            last_login_at=self.last_login_at,
            login_ratio_30_90=self.login_ratio_30_90,
            purchase_ratio_30_90=self.purchase_ratio_30_90,
            spend_ratio_30_90=self.spend_ratio_30_90,
            # open support tickets (profile) and complaints still in their window (feedback)
            open_complaints=self.open_tickets + complaints,
            sla_breached=breached,
            last_nps=self.last_nps,
            purchase_days=self.purchase_days,
            repeat_day_spend=self.repeat_day_spend,
        )


@dataclass(frozen=True)
class PurchaseSummary:
    """A customer's stored purchases summed up (adapters/scores.purchase_summaries)."""

    orders: int
    total_spend: float
    first_purchase_at: datetime
    last_purchase_at: datetime
    purchase_days: int
    repeat_day_spend: float


def apply_purchases(facts: StoredFacts, summary: PurchaseSummary | None) -> StoredFacts:
    if summary is None:
        return replace(
            facts,
            purchase_count=0,
            total_spend=0.0,
            first_purchase_at=None,
            last_purchase_at=None,
            purchase_days=0,
            repeat_day_spend=0.0,
        )
    return replace(
        facts,
        purchase_count=summary.orders,
        total_spend=summary.total_spend,
        first_purchase_at=summary.first_purchase_at,
        last_purchase_at=summary.last_purchase_at,
        purchase_days=summary.purchase_days,
        repeat_day_spend=summary.repeat_day_spend,
    )


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return parse_time(str(value))
    except EnvelopeError:
        return None


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def seen(facts: StoredFacts, at: datetime) -> StoredFacts:
    newest = at if facts.last_event_at is None else max(facts.last_event_at, at)
    return replace(facts, last_event_at=newest)


def _newer_document(facts: StoredFacts, version: int | None, at: datetime) -> bool:
    """Whether a document of ``version`` (time ``at``) replaces the applied one: a higher version wins; equal
    versions describe the same events, the later announcement (windows as of a later clock) wins; a document
    without a version is ordered by time, behind every versioned one."""
    if facts.profile_at is None and facts.profile_version is None:
        return True
    if version is None or facts.profile_version is None:
        if version is None and facts.profile_version is not None:
            return False
        if version is not None and facts.profile_version is None:
            return True
        return facts.profile_at is None or at >= facts.profile_at
    if version != facts.profile_version:
        return version > facts.profile_version
    return facts.profile_at is None or at >= facts.profile_at


def apply_profile_metrics(
    facts: StoredFacts, metrics: dict[str, Any], at: datetime, version: int | None = None
) -> StoredFacts:
    """Replaces the profile-derived facts with ``metrics`` (docs/events.md) unless a document of a higher version
    (or the same version, announced later) was applied already. Purchase facts are not taken from profile."""
    facts = seen(facts, at)
    if not _newer_document(facts, version, at):
        return facts
    nps = _int(metrics.get("last_nps"))
    return replace(
        facts,
        typical_interval_days=_float(metrics.get("typical_interval_days")),
        last_login_at=_time(metrics.get("last_login_at")),
        login_ratio_30_90=_float(metrics.get("login_ratio_30_90")),
        purchase_ratio_30_90=_float(metrics.get("purchase_ratio_30_90")),
        spend_ratio_30_90=_float(metrics.get("spend_ratio_30_90")),
        open_tickets=max(_int(metrics.get("open_tickets")) or 0, 0),
        # Feedback announces every answer with its own time; profile's copy carries only the time of the document's
        # cause, so it stands in only until feedback's answers arrive, and never replaces one of them.
        last_nps=nps if facts.last_nps_at is None and nps is not None else facts.last_nps,
        profile_at=at,
        profile_version=version,
    )


def apply_feedback(
    facts: StoredFacts,
    event_type: str,
    data: dict[str, Any],
    at: datetime,
    complaint_open_days: float,
    event_id: str | None = None,
) -> StoredFacts:
    """`feedback.received` (NPS, complaint) and `sla.breached`. CSAT is not a churn signal here."""
    facts = seen(facts, at)
    if event_type == "sla.breached":
        if facts.sla_breached_at is None or at > facts.sla_breached_at:
            return replace(facts, sla_breached_at=at)
        return facts
    score_type = data.get("score_type")
    if score_type == "nps":
        score = _int(data.get("score"))
        if score is not None and 0 <= score <= 10 and _newer_answer(facts, score, at):
            return replace(facts, last_nps=score, last_nps_at=at)
    elif score_type == "complaint":
        return with_complaint(facts, event_id or format_time(at), at, complaint_open_days)
    return facts


def _newer_answer(facts: StoredFacts, score: int, at: datetime) -> bool:
    """The newest answer wins; of two at one instant the higher score, so that arrival order never decides."""
    if facts.last_nps_at is None:
        return True
    return (at, score) > (facts.last_nps_at, facts.last_nps if facts.last_nps is not None else -1)


def with_complaint(facts: StoredFacts, event_id: str, at: datetime, complaint_open_days: float) -> StoredFacts:
    """Adds a complaint to the set and derives the open stretch from it: the newest complaints each within the
    open window of the one before, as a fold in time order would count them, whatever the arrival order."""
    complaints = {**facts.complaints, event_id: format_time(at)}
    kept = sorted(complaints.items(), key=lambda item: (_time(item[1]) or at, item[0]))[-MAX_COMPLAINTS_KEPT:]
    times = [_time(stamp) or at for _, stamp in kept]
    window = timedelta(days=complaint_open_days)
    stretch = 1
    while stretch < len(times) and times[-stretch] - times[-stretch - 1] <= window:
        stretch += 1
    return replace(facts, complaints=dict(kept), recent_complaints=stretch, last_complaint_at=times[-1])
