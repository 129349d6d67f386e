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
