"""When a customer's score next changes with no event at all.

Stage, the no-login reason and the complaint and SLA windows are functions of the clock: a customer who sends
nothing moves new -> active -> at_risk -> churned, and crosses "no login for N days", at instants that follow
from the facts alone. The earliest of them after the clock is the customer's due time; the scheduler rescores
the customer then, so the crossing is emitted on the day it happens rather than at the next event or refit.
Every rule it mirrors is strict (silence > threshold) or inclusive at the boundary, so one second past the
boundary is on the far side of both.

The purchase model's P(alive) is a function of the clock too: T grows by a day at every UTC midnight, P(alive)
falls with it, and the churn risk (noisy-or of the model signal and the others, which stay as they are until one of
the boundaries above) rises until it reaches the next churn level. That midnight is a due time as well
(``model_due``), so a customer who goes quiet crosses the level on the day the model says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np

from services.scoring.domain.churn import ChurnAssessment, ChurnConfig, ReasonCode, combine
from services.scoring.domain.customer_score import CustomerFacts, bgnbd_inputs
from services.scoring.domain.facts import StoredFacts
from services.scoring.domain.lifecycle import LifecycleConfig, stage_thresholds
from services.scoring.domain.purchase_models import PurchaseModel

PAST_BOUNDARY = timedelta(seconds=1)


@dataclass(frozen=True)
class DueConfig:
    lifecycle: LifecycleConfig
    churn: ChurnConfig
    complaint_open_days: float
    sla_breach_days: float
    churn_levels: tuple[float, ...] = (0.5, 0.8)
    # how far ahead a model crossing is looked for; a refit rescoring everyone looks again from its own clock
    model_horizon_days: int = 730


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


_COARSE_DAYS = 28


def model_due(
    customer: CustomerFacts,
    as_of: datetime,
    model: PurchaseModel | None,
    churn: ChurnAssessment,
    config: DueConfig,
) -> datetime | None:
    """The first UTC midnight after ``as_of`` at which P(alive) alone lifts the churn risk to the next churn level
    (``churn_levels``), within ``model_horizon_days``; None without a model, for a never-buyer, or when no level is
    reached. The other signals are held as they are (their changes are boundaries of their own); P(alive) falls
    with T for every model, so the first day is found on a coarse grid and then day by day in its bracket."""
    if model is None or not customer.is_buyer:
        return None
    assert customer.first_purchase_at is not None and customer.last_purchase_at is not None  # is_buyer
    other = combine([r.contribution for r in churn.reasons if r.code != ReasonCode.MODEL_DROPOUT])
    level = min((level for level in config.churn_levels if level > churn.risk), default=None)
    if level is None:
        return None  # every level reached already
    f, r, t_now = bgnbd_inputs(customer.first_purchase_at, customer.last_purchase_at, customer.transactions, as_of)
    weight = config.churn.model_weight

    def reached(days: np.ndarray) -> np.ndarray:
        alive = np.asarray(model.probability_alive(f, r, t_now + days), dtype=np.float64)
        strength = np.clip(weight * (1.0 - alive), 0.0, 1.0)
        return np.asarray(1.0 - (1.0 - other) * (1.0 - strength) >= level)

    horizon = config.model_horizon_days
    coarse = np.arange(_COARSE_DAYS, horizon + _COARSE_DAYS, _COARSE_DAYS, dtype=np.float64)
    coarse[-1] = min(coarse[-1], float(horizon))
    hit = reached(coarse)
    if not hit.any():
        return None
    upper = float(coarse[int(hit.argmax())])
    fine = np.arange(max(upper - _COARSE_DAYS + 1.0, 1.0), upper + 1.0, dtype=np.float64)
    days = int(fine[int(reached(fine).argmax())])
    today = datetime.combine(as_of.astimezone(UTC).date(), time(), tzinfo=UTC)
    return today + timedelta(days=days) + PAST_BOUNDARY


def earliest(*times: datetime | None) -> datetime | None:
    return min((at for at in times if at is not None), default=None)
