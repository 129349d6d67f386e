from datetime import UTC, datetime, timedelta

import pytest

from services.feedback.domain.errors import IllegalTransition, InvalidValue
from services.feedback.domain.sla import SlaClock
from services.feedback.domain.tickets import TicketChange, apply_change, apply_event, open_ticket, transition

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_happy_path_and_reopen() -> None:
    t = open_ticket("t-1", "c-1", T0, priority="high", category="billing", channel="email")
    t = transition(t, "in_progress", at(1))
    t = transition(t, "waiting_on_customer", at(2))
    assert t.first_response_at == at(2)  # waiting on the customer implies we answered
    t = transition(t, "in_progress", at(30))
    t = transition(t, "resolved", at(40))
    t = transition(t, "closed", at(50))
    assert t.closed_at == at(50) and t.resolved_at == at(40) and not t.is_open
    t = transition(t, "reopened", at(60))
    assert t.is_open and t.closed_at is None and t.resolved_at is None
    assert [c.status for c in t.status_history] == [
        "open",
        "in_progress",
        "waiting_on_customer",
        "in_progress",
        "resolved",
        "closed",
        "reopened",
    ]
    assert [e.kind for e in t.timeline].count("status_changed") == 6


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "waiting_on_customer"),
        ([], "reopened"),
        (["in_progress", "resolved", "closed"], "in_progress"),
        (["in_progress", "resolved"], "waiting_on_customer"),
    ],
)
def test_illegal_transitions(path: list[str], illegal: str) -> None:
    t = open_ticket("t-1", "c-1", T0)
    for i, status in enumerate(path, start=1):
        t = transition(t, status, at(i))  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition) as exc:
        transition(t, illegal, at(99))  # type: ignore[arg-type]
    assert exc.value.from_status == t.status and exc.value.to_status == illegal
    assert exc.value.field == "status"


def test_same_status_is_noop() -> None:
    t = open_ticket("t-1", "c-1", T0)
    assert transition(t, "open", at(1)) is t


def test_apply_change_priority_and_agent_response() -> None:
    t = open_ticket("t-1", "c-1", T0, priority="low")
    t2 = apply_change(t, TicketChange(at(3), priority="urgent", agent_response=True, actor="a-1"))
    assert t2.priority == "urgent" and t2.status == "open" and t2.first_response_at == at(3)
    assert [e.kind for e in t2.timeline] == ["opened", "agent_response", "priority_changed"]
    assert t.priority == "low"  # the original is untouched


def test_events_fold_into_state() -> None:
    t = apply_event(
        None, "ticket.opened", "c-1", {"ticket_id": "t-9", "priority": "urgent", "category": "shipping"}, T0
    )
    assert apply_event(t, "ticket.opened", "c-1", {"ticket_id": "t-9"}, at(1)) is t
    t = apply_event(t, "ticket.updated", "c-1", {"ticket_id": "t-9", "status": "in_progress", "agent_id": "a1"}, at(2))
    t = apply_event(t, "ticket.closed", "c-1", {"ticket_id": "t-9"}, at(4))
    assert t.status == "closed"
    clock = SlaClock(t.sla_ticket("vip"))
    assert clock.reading("resolution", at(100)).elapsed == timedelta(minutes=4)
    assert clock.breaches(at(100)) == []  # closing within 5 min counts as the first response


def test_event_validation_names_field() -> None:
    t = open_ticket("t-1", "c-1", T0)
    with pytest.raises(InvalidValue) as exc:
        apply_event(t, "ticket.updated", "c-1", {"ticket_id": "t-1", "status": "done"}, at(1))
    assert exc.value.field == "data.status"
    with pytest.raises(InvalidValue) as exc:
        apply_event(t, "ticket.updated", "c-1", {"ticket_id": "t-1", "priority": "asap"}, at(1))
    assert exc.value.field == "data.priority"
    with pytest.raises(InvalidValue) as exc:
        apply_event(None, "ticket.updated", "c-1", {"ticket_id": "t-2"}, at(1))
    assert exc.value.field == "data.ticket_id"
