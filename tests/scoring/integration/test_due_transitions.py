"""Due-time transitions on a real PostgreSQL with an injected clock: a customer who sends nothing crosses the
lifecycle and no-login thresholds at their due time, once, whatever the number of schedulers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta

import orjson
import pytest
from sqlalchemy import select

from libs.common.envelope import format_time
from services.scoring.adapters import scores
from services.scoring.adapters.tables import due_times, messaging
from services.scoring.domain.bgnbd import BgNbdParams
from services.scoring.domain.due import PAST_BOUNDARY
from services.scoring.domain.purchase_models import BgNbd
from services.scoring.handlers.due import run_due_pass
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, harness, profile_updated, purchase

DAY = timedelta(days=1)


@pytest.fixture
async def live(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


@pytest.fixture
async def replay(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated, clock_mode="replay"):
        yield h


async def _events(h: Harness) -> list[tuple[str, str, str, str, dict[str, object]]]:
    """(ce_id, ce_type, ce_subject, ce_time, data) of every outbox row, oldest first."""
    table = messaging.outbox
    async with h.sessions() as session:
        rows = (await session.execute(select(table.c.headers, table.c.value).order_by(table.c.id))).all()
    out = []
    for row in rows:
        headers = dict(row.headers)
        out.append(
            (headers["ce_id"], headers["ce_type"], headers["ce_subject"], headers["ce_time"], orjson.loads(row.value))
        )
    return out


def _stage_changes(events: list[tuple[str, str, str, str, dict[str, object]]]) -> list[tuple[str, str, object, object]]:
    return [
        (subject, at, data["old"], data["new"])
        for _, kind, subject, at, data in events
        if kind == "threshold.crossed" and data["kind"] == "stage_changed"
    ]


async def _due(h: Harness, customer_id: str) -> datetime | None:
    async with h.sessions() as session:
        return await session.scalar(select(due_times.c.due_at).where(due_times.c.customer_id == customer_id))


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


async def test_a_quiet_customer_goes_at_risk_then_churned_at_the_due_times(live: Harness) -> None:
    last = datetime.now(UTC) - 40 * DAY  # active: first purchase over 30 days ago, silence under 90
    await live.purchases(purchase("p1", "c-1", last, 80.0))
    at_risk_due, churn_due = last + 90 * DAY + PAST_BOUNDARY, last + 180 * DAY + PAST_BOUNDARY
    assert await _due(live, "c-1") == at_risk_due
    await live.clear_outbox()

    assert await run_due_pass(live.service, live.sessions, live.outbox, at(at_risk_due - PAST_BOUNDARY)) == 0
    assert await run_due_pass(live.service, live.sessions, live.outbox, at(at_risk_due)) == 1
    assert await _due(live, "c-1") == churn_due
    score = await live.score("c-1")
    assert score is not None and score["stage"] == "at_risk" and score["as_of"] == format_time(at_risk_due)
    # a scheduler that fell a year behind catches up one due time at a time, each event at its own due time
    late = last + 400 * DAY
    assert await run_due_pass(live.service, live.sessions, live.outbox, at(late)) == 1
    assert await run_due_pass(live.service, live.sessions, live.outbox, at(late)) == 0
    assert await _due(live, "c-1") is None  # nothing changes by the clock any more
    events = await _events(live)
    assert _stage_changes(events) == [
        ("c-1", format_time(at_risk_due), "active", "at_risk"),
        ("c-1", format_time(churn_due), "at_risk", "churned"),
    ]
    assert {kind for _, kind, *_ in events} == {"score.changed", "threshold.crossed"}


async def test_no_login_for_ninety_days_is_a_due_time(live: Harness) -> None:
    now = datetime.now(UTC)
    login = now - 80 * DAY
    await live.purchases(purchase("p1", "c-2", now - 5 * DAY, 80.0))
    await live.profile(profile_updated("u1", "c-2", now - DAY, version=1, last_login_at=format_time(login)))
    due = login + 90 * DAY + PAST_BOUNDARY
    assert await _due(live, "c-2") == due
    await live.clear_outbox()
    assert await run_due_pass(live.service, live.sessions, live.outbox, at(due + timedelta(seconds=30))) == 1
    changed = [(when, data) for _, kind, _, when, data in await _events(live) if kind == "score.changed"]
    assert len(changed) == 1 and changed[0][0] == format_time(due)
    assert "no_login" in {reason["code"] for reason in changed[0][1]["reasons"]}  # type: ignore[attr-defined]


async def test_two_schedulers_emit_every_transition_once(live: Harness) -> None:
    last = datetime.now(UTC) - 40 * DAY
    customers = [f"c-{i:03d}" for i in range(60)]
    await live.purchases(
        *[purchase(f"p-{c}", c, last + i * timedelta(minutes=1), 10.0) for i, c in enumerate(customers)]
    )
    await live.clear_outbox()
    clock = at(last + 100 * DAY)

    async def drain() -> None:
        while await run_due_pass(live.service, live.sessions, live.outbox, clock):
            pass

    await asyncio.gather(drain(), drain())
    events = await _events(live)
    ids = [event_id for event_id, *_ in events]
    assert len(ids) == len(set(ids))
    assert sorted(subject for subject, *_ in _stage_changes(events)) == customers


async def test_replay_moves_on_the_newest_event_time_and_stamps_the_due_time(replay: Harness) -> None:
    last = datetime(1997, 3, 1, tzinfo=UTC)
    await replay.purchases(purchase("p1", "c-1", last - 40 * DAY, 20.0), purchase("p2", "c-1", last, 30.0))
    await replay.clear_outbox()
    wall = at(datetime(2030, 1, 1, tzinfo=UTC))  # ignored in replay: the clock is the newest event time
    assert await run_due_pass(replay.service, replay.sessions, replay.outbox, wall) == 0
    await replay.purchases(purchase("p3", "c-other", last + 100 * DAY, 5.0))
    while await run_due_pass(replay.service, replay.sessions, replay.outbox, wall):
        pass  # the end of the 'reactivated' window passes first and changes nothing for an active customer
    assert await _due(replay, "c-1") == last + 180 * DAY + PAST_BOUNDARY  # after the newest event: not yet
    assert _stage_changes(await _events(replay)) == [
        ("c-1", format_time(last + 90 * DAY + PAST_BOUNDARY), "active", "at_risk")
    ]


async def _store_bg_nbd(h: Harness, params: dict[str, float]) -> None:
    """A fitted model whose chosen purchase model is BG/NBD with ``params`` (time in days)."""
    async with h.sessions() as session, session.begin():
        await scores.insert_model(
            session,
            dict(
                as_of=datetime.now(UTC),
                n_customers=1,
                n_buyers=1,
                n_unique_triples=1,
                small_base=False,
                bgnbd=params,
                gamma_gamma=None,
                rfm_edges={"recency": [30, 60, 90, 180], "frequency": [1, 2, 3, 5], "monetary": [20, 50, 100, 200]},
                rfm_rank=[0.0, 5.0, 10.0, 15.0],
                clv_rank=None,
                diagnostics={"trigger": "test"},
                chosen_model="bg_nbd",
                candidates=[{"name": "bg_nbd", "params": params}],
                holdout=None,
            ),
        )


async def test_p_alive_falling_crosses_the_churn_level_on_its_day(live: Harness) -> None:
    """A repeat buyer who goes quiet: BG/NBD's P(alive) falls every day, and the UTC midnight at which the churn risk
    (1 - P(alive), no other signal) reaches 0.5 is a due time; passes up to just before it (injected clock) emit no
    crossing, the pass at it emits churn_risk_up stamped with that instant."""
    params = {"r": 0.243, "alpha": 30.9, "a": 0.793, "b": 2.426}
    await _store_bg_nbd(live, params)
    first = datetime.now(UTC) - 70 * DAY
    # six purchase days 10 days apart: x = 5, recency 50 days, the last one 20 days ago
    await live.purchases(*[purchase(f"q{i}", "c-q", first + i * 10 * DAY, 40.0) for i in range(6)])
    score = await live.score("c-q")
    assert score is not None and score["churn_risk"] < 0.5
    p_alive = BgNbd(BgNbdParams(**params)).probability_alive
    start = datetime.combine(first.date(), time(), tzinfo=UTC)
    quiet = next(d for d in range(71, 2000) if 1.0 - float(p_alive(5.0, 50.0, float(d))) >= 0.5)
    crossing = start + quiet * DAY + PAST_BOUNDARY
    await live.clear_outbox()

    while await run_due_pass(live.service, live.sessions, live.outbox, at(crossing - 2 * PAST_BOUNDARY)):
        pass  # stage boundaries on the way (new -> active, ...) come first, each at its own due time
    assert await _due(live, "c-q") == crossing
    assert not [data for _, kind, *_, data in await _events(live) if data.get("kind") == "churn_risk_up"]
    assert await run_due_pass(live.service, live.sessions, live.outbox, at(crossing + timedelta(seconds=20))) == 1
    crossed = [
        (when, data["level"])
        for _, kind, _, when, data in await _events(live)
        if kind == "threshold.crossed" and data["kind"] == "churn_risk_up"
    ]
    assert crossed == [(format_time(crossing), 0.5)]
    score = await live.score("c-q")
    assert score is not None and score["churn_risk"] >= 0.5 and score["as_of"] == format_time(crossing)
    following = await _due(live, "c-q")
    assert following is not None and following > crossing  # the next level (0.8) or a stage boundary
