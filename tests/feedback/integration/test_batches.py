"""A consumer batch of scores and profile changes leaves exactly the state that handling its events one by one does."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent
from services.feedback.adapters.tables import aliases, customers, erasures
from services.feedback.handlers import customers as customer_handlers
from tests.feedback.integration.harness import T0, Harness, event

_runs = itertools.count()
PEOPLE = ("a", "b")
TIERS = ("low", "medium", "high")
SEGMENTS = ("vip", "lapsing", "new")

# (kind, person, other person, tier index, segments entered, segments left, minute)
Step = tuple[str, int, int, int, frozenset[str], frozenset[str], int]

steps = st.tuples(
    # Joins and erasures rarer than the events between them, so that runs of those are long.
    st.sampled_from(("score", "score", "score", "crossing", "segments", "segments", "segments", "alias", "erase")),
    st.integers(0, len(PEOPLE) - 1),
    st.integers(0, len(PEOPLE) - 1),
    st.integers(0, len(TIERS) - 1),
    st.frozensets(st.sampled_from(SEGMENTS)),
    st.frozensets(st.sampled_from(SEGMENTS)),
    # Few distinct minutes, so that ties of event time are common.
    st.integers(0, 2),
)


def events_of(run: str, history: Sequence[Step]) -> list[tuple[str, CloudEvent]]:
    """(topic, event) of a history, its customers named after the run so that runs share nothing."""
    found: list[tuple[str, CloudEvent]] = []
    data: dict[str, Any]
    for kind, person, other, tier, entered, left, minute in history:
        customer, at = f"{run}-{PEOPLE[person]}", T0 + timedelta(minutes=minute)
        if kind == "score":
            found.append(("score", event("score.changed", customer, {"tier": TIERS[tier]}, at)))
        elif kind == "crossing":
            data = {"kind": "tier_up", "old": "low", "new": TIERS[tier]}
            found.append(("score", event("threshold.crossed", customer, data, at)))
        elif kind == "segments":
            data = {"segments_entered": sorted(entered), "segments_left": sorted(left)}
            found.append(("profile", event("profile.updated", customer, data, at)))
        elif kind == "alias":
            data = {"customer_id": customer, "alias_id": f"{run}-hd-{PEOPLE[other]}"}
            found.append(("profile", event("profile.aliased", customer, data, at)))
        else:
            found.append(("profile", event("customer.erased", customer, {"customer_id": customer}, at)))
    return found


HANDLERS = {"score": customer_handlers.on_score_changes, "profile": customer_handlers.on_profile_changes}


async def handle_in_batches(h: Harness, events: list[tuple[str, CloudEvent]], cuts: set[int]) -> None:
    """Consecutive events of one topic form a batch, cut further where `cuts` says; one transaction each."""
    batches: list[tuple[str, list[CloudEvent]]] = []
    for index, (topic, ev) in enumerate(events):
        if batches and batches[-1][0] == topic and index not in cuts:
            batches[-1][1].append(ev)
        else:
            batches.append((topic, [ev]))
    for topic, batch in batches:
        async with h.sessions() as session, session.begin():
            await HANDLERS[topic](HandlerContext(session, h.deps.outbox), batch)


async def state(h: Harness, run: str) -> dict[str, Any]:
    def named(customer_id: str) -> str:
        return customer_id.removeprefix(f"{run}-")

    rows = await h.rows(select(customers).where(customers.c.customer_id.startswith(f"{run}-")))
    joined = await h.rows(select(aliases.table).where(aliases.table.c.alias_id.startswith(f"{run}-")))
    erased = await h.rows(select(erasures.table).where(erasures.table.c.customer_id.startswith(f"{run}-")))
    return {
        "customers": sorted(
            (named(r["customer_id"]), r["tier"], r["tier_at"], sorted(r["segments"]), r["segments_at"]) for r in rows
        ),
        "aliases": sorted((named(r["alias_id"]), named(r["customer_id"])) for r in joined),
        "erasures": sorted((named(r["customer_id"]), r["erased_at"]) for r in erased),
    }


async def test_a_batch_gives_the_state_that_one_by_one_handling_gives(harness: Harness) -> None:
    h = harness
    loop = asyncio.get_running_loop()

    async def both(history: list[Step], cuts: set[int]) -> tuple[dict[str, Any], dict[str, Any]]:
        one, batched = f"one{next(_runs)}", f"batch{next(_runs)}"
        for topic, ev in events_of(one, history):
            await handle_in_batches(h, [(topic, ev)], set())  # a batch of one: one by one
        await handle_in_batches(h, events_of(batched, history), cuts)
        return await state(h, one), await state(h, batched)

    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    # Two scores of one time in one batch: the later one wins, as one by one.
    @example(
        history=[("score", 0, 0, 0, frozenset(), frozenset(), 0), ("score", 0, 0, 2, frozenset(), frozenset(), 0)],
        cuts=set(),
    )
    @given(history=st.lists(steps, min_size=1, max_size=14), cuts=st.sets(st.integers(0, 13), max_size=3))
    def same_state(history: list[Step], cuts: set[int]) -> None:
        one, batched = asyncio.run_coroutine_threadsafe(both(history, cuts), loop).result(60)
        assert batched == one, history

    await asyncio.to_thread(same_state)


async def test_an_event_of_an_erased_customer_in_a_batch_changes_nothing_and_the_others_apply(
    harness: Harness,
) -> None:
    h = harness
    gone = T0 + timedelta(hours=1)
    await h.handle(
        customer_handlers.on_profile_change, event("customer.erased", "c-gone", {"customer_id": "c-gone"}, gone)
    )
    batch = [
        event("score.changed", "c-gone", {"tier": "high"}, gone - timedelta(minutes=1)),
        event("score.changed", "c-kept", {"tier": "low"}, T0),
        event("score.changed", "c-kept", {"tier": "high"}, T0 + timedelta(minutes=5)),
        event("score.changed", "c-kept", {"tier": "medium"}, T0 + timedelta(minutes=2)),  # late: older than "high"
    ]
    async with h.sessions() as session, session.begin():
        await customer_handlers.on_score_changes(HandlerContext(session, h.deps.outbox), batch)
    rows = await h.rows(select(customers.c.customer_id, customers.c.tier))
    assert [(r["customer_id"], r["tier"]) for r in rows] == [("c-kept", "high")]
