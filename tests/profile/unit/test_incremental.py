"""The consumer's fast path (ordered inserts, `normalise(state, touched)`, `prepare_save`) must give exactly what
folding with `apply` and a full normalise gives: same document, same change set."""

from __future__ import annotations

import random
from datetime import date, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.profile.domain import (
    ProfileEvent,
    ProfileState,
    apply_in_place,
    changed_between,
    merge_states,
    new_profile,
    normalise,
    parse_payload,
)
from services.profile.domain.derive import (
    add_applied,
    add_purchase_date,
    get_or_insert,
    insert_sorted,
    insort_unique,
    merge_applied,
    merge_purchase_dates,
)
from services.profile.domain.state import MAX_APPLIED_EVENT_IDS, MAX_PURCHASE_DATES, AppliedEvent
from services.profile.handlers.profiles import Cause, Working, prepare_save

from .helpers import CUSTOMER, build, t
from .test_order_independence import _event_lists


def test_insert_sorted_keeps_key_order_in_place() -> None:
    mapping: dict[str, int] = {}
    same = mapping
    for key in ["m", "z", "a", "q", "b"]:
        insert_sorted(mapping, key, len(key))
    assert mapping is same
    assert list(mapping) == ["a", "b", "m", "q", "z"]


def test_get_or_insert_builds_the_default_once() -> None:
    mapping: dict[date, list[int]] = {date(2024, 1, 2): [1]}
    assert get_or_insert(mapping, date(2024, 1, 2), list) == [1]
    get_or_insert(mapping, date(2024, 1, 1), list).append(0)
    assert list(mapping.items()) == [(date(2024, 1, 1), [0]), (date(2024, 1, 2), [1])]


def test_insort_unique_is_sorted_set() -> None:
    values: list[str] = []
    added = [insort_unique(values, value) for value in ["b", "a", "b", "c", "a"]]
    assert values == ["a", "b", "c"]
    assert added == [True, True, False, True, False]


def test_add_purchase_date_matches_merge_purchase_dates() -> None:
    rng = random.Random(1)
    days = [date(2024, 1, 1) + timedelta(days=rng.randrange(400)) for _ in range(600)]
    dates: list[date] = []
    for day in days:
        before = list(dates)
        changed = add_purchase_date(dates, day)
        assert changed == (dates != before)
    assert dates == merge_purchase_dates(days)
    assert len(dates) == MAX_PURCHASE_DATES


def test_add_applied_matches_merge_applied() -> None:
    rng = random.Random(2)
    base = t("2024-01-01")
    items = [AppliedEvent(at=base + timedelta(hours=rng.randrange(300)), id=f"e{i}") for i in range(500)]
    applied: list[AppliedEvent] = []
    for item in items:
        add_applied(applied, item)
    assert applied == merge_applied(items)
    assert len(applied) == MAX_APPLIED_EVENT_IDS


def _fold_in_batches(events: list[ProfileEvent], cuts: set[int]) -> ProfileState:
    """The consumer's path: apply_in_place per event, prepare_save at each cut, the cached `before` in between."""
    working = Working.fresh(CUSTOMER)
    previous = new_profile(CUSTOMER).to_dict()
    for index, event in enumerate(events):
        if apply_in_place(working.state, event, parse_payload(event.type, event.data), working.seen, working.touched):
            working.touch(Cause(event.id, event.type, event.time))
        if (index in cuts or index == len(events) - 1) and working.dirty:
            row, changed, document = prepare_save(working, 1)
            stored = orjson.loads(row.state_json)
            renormalised = ProfileState.from_dict(stored)
            normalise(renormalised)
            assert stored == renormalised.to_dict() == working.state.to_dict()
            assert orjson.loads(row.tags_json) == working.state.tags
            assert changed == changed_between(previous, stored)
            previous = stored
            working = Working.of(working.state, document)
    return working.state


_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(st.data())
def test_incremental_path_equals_full_fold(data: st.DataObject) -> None:
    events = data.draw(_event_lists())
    cuts = set(data.draw(st.lists(st.integers(0, len(events) - 1), max_size=5)))
    assert _fold_in_batches(events, cuts).to_dict() == build(events).to_dict()


def test_prepare_save_after_state_replacement_compares_everything() -> None:
    # A replaced state (a merge, a tag edit) has no `touched` record: the whole document must be compared.
    working = Working.fresh("a")
    other = build([ProfileEvent("e1", "login", "b", t("2024-01-01"), {"channel": "web"})], customer_id="b")
    working.state = merge_states(working.state, other)
    assert working.touched is None
    working.touch(Cause("m", "customer.upserted", t("2024-01-02")))
    row, changed, document = prepare_save(working, 7)
    assert document == orjson.loads(row.state_json) == working.state.to_dict()
    assert {"merged_from", "logins.count", "first_seen", "last_seen"} <= changed
