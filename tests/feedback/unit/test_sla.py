from datetime import UTC, datetime, timedelta

import pytest

from services.feedback.domain.errors import InvalidValue
from services.feedback.domain.sla import (
    DEFAULT_SLA_TABLE,
    SlaClock,
    SlaTable,
    SlaTicket,
    StatusChange,
    new_breaches,
)

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ticket(history: list[tuple[float, str]], first_response: float | None = None, **kw: str) -> SlaTicket:
    return SlaTicket(
        ticket_id="t-1",
        tier=kw.get("tier", "vip"),  # type: ignore[arg-type]
        priority=kw.get("priority", "urgent"),  # type: ignore[arg-type]
        opened_at=T0,
        history=tuple(StatusChange(at(m), s) for m, s in history),
        first_response_at=None if first_response is None else at(first_response),
    )


def test_default_table_scales_out() -> None:
    vip = DEFAULT_SLA_TABLE.target("vip", "urgent")
    assert vip.first_response == timedelta(minutes=5)
    assert vip.resolution == timedelta(hours=4)
    assert DEFAULT_SLA_TABLE.target("high", "urgent") == vip
    low = DEFAULT_SLA_TABLE.target("low", "low")
    assert low.first_response > DEFAULT_SLA_TABLE.target("medium", "low").first_response > vip.first_response


def test_table_from_dict_overlays_and_validates() -> None:
    table = SlaTable.from_dict({"low": {"urgent": {"first_response_minutes": 30}}})
    assert table.target("low", "urgent").first_response == timedelta(minutes=30)
    assert table.target("low", "urgent").resolution == DEFAULT_SLA_TABLE.target("low", "urgent").resolution
    assert table.target("vip", "urgent") == DEFAULT_SLA_TABLE.target("vip", "urgent")
    with pytest.raises(InvalidValue) as exc:
        SlaTable.from_dict({"gold": {}})
    assert exc.value.field == "sla.tier"
    with pytest.raises(InvalidValue) as exc:
        SlaTable.from_dict({"vip": {"urgent": {"resolution_minutes": -1}}})
    assert exc.value.field == "sla.vip.urgent.resolution_minutes"


def test_running_clock_elapsed_remaining_due() -> None:
    clock = SlaClock(ticket([(0, "open")]))
    r = clock.reading("first_response", at(3))
    assert r.state == "running"
    assert r.elapsed == timedelta(minutes=3)
    assert r.remaining == timedelta(minutes=2)
    assert r.due_at == at(5)
    assert not r.breached


def test_paused_time_not_counted_and_resumed_clock_continues() -> None:
    # Running 0-60, waiting on customer 60-180, running again from 180.
    t = ticket([(0, "open"), (60, "in_progress"), (60, "waiting_on_customer"), (180, "in_progress")], 2)
    clock = SlaClock(t)
    paused = clock.reading("resolution", at(150))
    assert paused.state == "paused"
    assert paused.elapsed == timedelta(minutes=60)
    assert paused.due_at is None
    resumed = clock.reading("resolution", at(200))
    assert resumed.state == "running"
    assert resumed.elapsed == timedelta(minutes=80)
    assert resumed.due_at == at(200) + timedelta(hours=4) - timedelta(minutes=80)
    # 4 h target: 60 min before the pause + 180 min after it -> deadline at minute 360.
    assert clock.breaches(at(360)) == []
    assert clock.breaches(at(361)) == ["resolution"]
    assert clock.reading("resolution", at(361)).deadline_reached_at == at(360)


def test_on_hold_pauses_first_response_clock() -> None:
    clock = SlaClock(ticket([(0, "open"), (2, "on_hold"), (30, "open")]))
    assert clock.reading("first_response", at(32)).elapsed == timedelta(minutes=4)
    assert clock.breaches(at(32)) == []
    assert clock.breaches(at(34)) == ["first_response"]


def test_first_response_stops_and_late_answer_is_still_a_breach() -> None:
    on_time = SlaClock(ticket([(0, "open")], first_response=4))
    r = on_time.reading("first_response", at(500))
    assert r.state == "stopped" and r.elapsed == timedelta(minutes=4) and not r.breached
    late = SlaClock(ticket([(0, "open")], first_response=7))
    assert late.breaches(at(8)) == ["first_response"]


def test_resolution_stops_when_resolved_and_continues_on_reopen() -> None:
    t = ticket([(0, "open"), (100, "resolved"), (1000, "reopened")], first_response=1)
    clock = SlaClock(t)
    assert clock.reading("resolution", at(500)).state == "stopped"
    assert clock.reading("resolution", at(500)).elapsed == timedelta(minutes=100)
    assert clock.reading("resolution", at(1010)).elapsed == timedelta(minutes=110)


def test_future_history_is_ignored_as_of_now() -> None:
    t = ticket([(0, "open"), (10, "waiting_on_customer")], first_response=1)
    assert SlaClock(t).reading("resolution", at(5)).state == "running"


def test_breach_raised_once_per_clock() -> None:
    t = ticket([(0, "open")])
    first = new_breaches(t, at(6), set())
    assert [(b.clock, b.breached_at) for b in first] == [("first_response", at(5))]
    raised = {b.clock for b in first}
    assert new_breaches(t, at(7), raised) == []
    later = new_breaches(t, at(241), raised)
    assert [b.clock for b in later] == ["resolution"]
    assert later[0].key == "t-1:resolution"
    assert new_breaches(t, at(300), {b.key for b in first + later}) == []
    assert raised == {"first_response"}  # input not mutated
