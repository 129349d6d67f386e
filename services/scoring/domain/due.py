"""When a customer's score next changes with no event at all.

Stage, the no-login reason and the complaint and SLA windows are functions of the clock: a customer who sends
nothing moves new -> active -> at_risk -> churned, and crosses "no login for N days", at instants that follow
from the facts alone. The earliest of them after the clock is the customer's due time; the scheduler rescores
the customer then, so the crossing is emitted on the day it happens rather than at the next event or refit.
Every rule it mirrors is strict (silence > threshold) or inclusive at the boundary, so one second past the
boundary is on the far side of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.scoring.domain.churn import ChurnConfig
from services.scoring.domain.facts import StoredFacts
from services.scoring.domain.lifecycle import LifecycleConfig, stage_thresholds

PAST_BOUNDARY = timedelta(seconds=1)


@dataclass(frozen=True)
class DueConfig:
    lifecycle: LifecycleConfig
    churn: ChurnConfig
    complaint_open_days: float
    sla_breach_days: float


def boundaries(facts: StoredFacts, config: DueConfig) -> list[datetime]:
    """Every instant at which a rule of the score flips for these facts, past or future."""
    out: list[datetime] = []
    life = config.lifecycle
    if facts.first_purchase_at is not None and facts.last_purchase_at is not None:
        limits = stage_thresholds(facts.typical_interval_days, life)
        out.append(facts.first_purchase_at + timedelta(days=life.new_days))
        for days in (limits.at_risk_days, limits.churn_days, life.reactivated_days):
            out.append(facts.last_purchase_at + timedelta(days=days))
    if facts.last_login_at is not None:
        out.append(facts.last_login_at + timedelta(days=config.churn.no_login_days))
    if facts.last_complaint_at is not None and facts.recent_complaints > 0:
        out.append(facts.last_complaint_at + timedelta(days=config.complaint_open_days))
    if facts.sla_breached_at is not None:
        out.append(facts.sla_breached_at + timedelta(days=config.sla_breach_days))
    return [at + PAST_BOUNDARY for at in out]


def next_due(facts: StoredFacts, as_of: datetime, config: DueConfig) -> datetime | None:
    """The first boundary after ``as_of``; None when nothing changes by the clock alone."""
    return min((at for at in boundaries(facts, config) if at > as_of), default=None)
