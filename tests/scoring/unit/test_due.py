"""Due times: nothing the clock alone decides changes between a scoring and the customer's due time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.scoring.domain.churn import ChurnConfig
from services.scoring.domain.due import DueConfig, next_due
from services.scoring.domain.facts import StoredFacts
from services.scoring.domain.lifecycle import LifecycleConfig, Stage, lifecycle_stage

CONFIG = DueConfig(LifecycleConfig(), ChurnConfig(), complaint_open_days=30.0, sla_breach_days=90.0)
START = datetime(2024, 1, 1, tzinfo=UTC)
offsets = st.floats(min_value=0, max_value=400).map(lambda days: timedelta(days=days))


def _clock_state(facts: StoredFacts, at: datetime, previous: Stage) -> tuple[object, ...]:
    customer = facts.customer_facts(at, CONFIG.complaint_open_days, CONFIG.sla_breach_days)
    stage = lifecycle_stage(at, facts.first_purchase_at, facts.last_purchase_at, facts.typical_interval_days, previous)
    no_login = facts.last_login_at is not None and (at - facts.last_login_at) >= timedelta(
        days=CONFIG.churn.no_login_days
    )
    return stage, no_login, customer.open_complaints, customer.sla_breached


@given(
    first=offsets,
    gap=offsets,
    interval=st.one_of(st.none(), st.floats(min_value=0.5, max_value=200)),
    login=st.one_of(st.none(), offsets),
    complaint=st.one_of(st.none(), offsets),
    breach=st.one_of(st.none(), offsets),
    clock=offsets,
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    previous=st.sampled_from(list(Stage)),
)
def test_nothing_flips_before_the_due_time(
    first: timedelta,
    gap: timedelta,
    interval: float | None,
    login: timedelta | None,
    complaint: timedelta | None,
    breach: timedelta | None,
    clock: timedelta,
    fraction: float,
    previous: Stage,
) -> None:
    facts = StoredFacts(
        "c",
        first_purchase_at=START + first,
        last_purchase_at=START + first + gap,
        typical_interval_days=interval,
        last_login_at=None if login is None else START + login,
        last_complaint_at=None if complaint is None else START + complaint,
        recent_complaints=0 if complaint is None else 1,
        sla_breached_at=None if breach is None else START + breach,
    )
    as_of = START + clock
    due = next_due(facts, as_of, CONFIG)
    horizon = due if due is not None else as_of + timedelta(days=2000)
    assert due is None or due > as_of
    between = as_of + (horizon - as_of) * fraction
    if between < horizon:
        assert _clock_state(facts, between, previous) == _clock_state(facts, as_of, previous)


_MODELS = {
    "bg_nbd": {"r": 0.243, "alpha": 30.9, "a": 0.793, "b": 2.426},
    "mbg_nbd": {"r": 0.525, "alpha": 44.1, "a": 0.891, "b": 1.614},
    "pareto_nbd": {"r": 0.553, "alpha": 74.0, "s": 0.606, "beta": 81.7},
}


@given(
    name=st.sampled_from(sorted(_MODELS)),
    repeats=st.integers(min_value=0, max_value=12),
    span=st.integers(min_value=0, max_value=300),
    quiet=st.integers(min_value=0, max_value=200),
    hour=st.integers(min_value=0, max_value=23),
    complaints=st.integers(min_value=0, max_value=2),
)
def test_a_churn_level_reached_by_p_alive_alone_is_due_on_its_day(
    name: str, repeats: int, span: int, quiet: int, hour: int, complaints: int
) -> None:
    """Scoring the same facts day after day with the real scorer: the churn risk stays below the next level up to
    the day before ``model_due`` and reaches it on that day (or never within the horizon when it says None)."""
    import numpy as np

    from services.scoring.domain.customer_score import CustomerFacts, ScoringModel, score_customer
    from services.scoring.domain.due import PAST_BOUNDARY, model_due
    from services.scoring.domain.purchase_models import model_from_params
    from services.scoring.domain.rfm import rank_reference, rfm_edges

    model = model_from_params(name, _MODELS[name])
    scoring = ScoringModel(
        rfm_edges=rfm_edges(np.arange(10.0), np.arange(10.0), np.arange(10.0)),
        rfm_rank=rank_reference([0.0, 1.0]),
        purchase=model,
    )
    first = START
    last = first + timedelta(days=span if repeats else 0)
    customer = CustomerFacts(
        "c",
        first_purchase_at=first,
        last_purchase_at=last,
        purchase_count=repeats + 1,
        total_spend=10.0 * (repeats + 1),
        purchase_days=repeats + 1,
        repeat_day_spend=10.0 * repeats,
        open_complaints=complaints,
    )
    as_of = last + timedelta(days=quiet, hours=hour)
    now = score_customer(customer, as_of, scoring)
    due = model_due(customer, as_of, model, now.churn, CONFIG)
    level = min((lvl for lvl in CONFIG.churn_levels if lvl > now.churn.risk), default=None)
    if due is None:
        if level is not None:
            far = score_customer(customer, as_of + timedelta(days=CONFIG.model_horizon_days), scoring)
            assert far.churn.risk < level
        return
    assert level is not None and due > as_of
    assert due - PAST_BOUNDARY == due.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(0)
    before = score_customer(customer, due - PAST_BOUNDARY - timedelta(seconds=1), scoring)
    on = score_customer(customer, due, scoring)
    assert before.churn.risk < level <= on.churn.risk
