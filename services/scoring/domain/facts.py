"""What scoring keeps per customer, folded from `profile.updated` metrics and feedback events.

Profile sends its whole metrics document on every change, so the purchase/login facts are replaced,
not accumulated; only a document at least as new as the one applied counts (a replay or late copy
must not roll a customer back). Feedback signals arrive as individual events and are folded in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from libs.common.envelope import EnvelopeError, parse_time
from services.scoring.domain.customer_score import CustomerFacts


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
    recent_complaints: int = 0  # complaints since the first one of the current open window
    sla_breached_at: datetime | None = None
    last_nps: int | None = None
    last_nps_at: datetime | None = None
    profile_at: datetime | None = None  # event time of the newest metrics document applied
    last_event_at: datetime | None = None  # newest event time seen for this customer (replay clock)

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


def _seen(facts: StoredFacts, at: datetime) -> StoredFacts:
    newest = at if facts.last_event_at is None else max(facts.last_event_at, at)
    return replace(facts, last_event_at=newest)


def apply_profile_metrics(facts: StoredFacts, metrics: dict[str, Any], at: datetime) -> StoredFacts:
    """Replaces the profile-derived facts with ``metrics`` (docs/events.md) unless an newer document
    was applied already. ``order_count`` is accepted for ``purchase_count`` (the foundation's profile)."""
    facts = _seen(facts, at)
    if facts.profile_at is not None and at < facts.profile_at:
        return facts
    count = _int(metrics.get("purchase_count", metrics.get("order_count"))) or 0
    last = _time(metrics.get("last_purchase_at"))
    # A profile that does not send first_purchase_at still has a first purchase: keep the earliest known.
    first = _time(metrics.get("first_purchase_at")) or facts.first_purchase_at or last
    if first is not None and last is not None and first > last:
        first = last
    nps = _int(metrics.get("last_nps"))
    return replace(
        facts,
        first_purchase_at=first if count > 0 else None,
        last_purchase_at=last if count > 0 else None,
        purchase_count=max(count, 0),
        total_spend=_float(metrics.get("total_spend")) or 0.0,
        typical_interval_days=_float(metrics.get("typical_interval_days")),
        last_login_at=_time(metrics.get("last_login_at")),
        login_ratio_30_90=_float(metrics.get("login_ratio_30_90")),
        purchase_ratio_30_90=_float(metrics.get("purchase_ratio_30_90")),
        spend_ratio_30_90=_float(metrics.get("spend_ratio_30_90")),
        open_tickets=max(_int(metrics.get("open_tickets")) or 0, 0),
        # feedback's own NPS event may be newer than the profile's copy: keep the newer one
        last_nps=nps if nps is not None and (facts.last_nps_at is None or at >= facts.last_nps_at) else facts.last_nps,
        last_nps_at=at
        if nps is not None and (facts.last_nps_at is None or at >= facts.last_nps_at)
        else facts.last_nps_at,
        profile_at=at,
    )


def apply_feedback(
    facts: StoredFacts, event_type: str, data: dict[str, Any], at: datetime, complaint_open_days: float
) -> StoredFacts:
    """`feedback.received` (NPS, complaint) and `sla.breached`. CSAT is not a churn signal here."""
    facts = _seen(facts, at)
    if event_type == "sla.breached":
        if facts.sla_breached_at is None or at > facts.sla_breached_at:
            return replace(facts, sla_breached_at=at)
        return facts
    score_type = data.get("score_type")
    if score_type == "nps":
        score = _int(data.get("score"))
        if score is not None and 0 <= score <= 10 and (facts.last_nps_at is None or at >= facts.last_nps_at):
            return replace(facts, last_nps=score, last_nps_at=at)
    elif score_type == "complaint":
        window = timedelta(days=complaint_open_days)
        still_open = facts.last_complaint_at is not None and at - facts.last_complaint_at <= window
        return replace(
            facts,
            recent_complaints=(facts.recent_complaints if still_open else 0) + 1,
            last_complaint_at=at if facts.last_complaint_at is None else max(at, facts.last_complaint_at),
        )
    return facts
