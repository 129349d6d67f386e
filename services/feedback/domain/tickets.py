"""Support-ticket state machine.

    open -> in_progress <-> waiting_on_customer
    open / in_progress / waiting / on_hold / reopened -> resolved -> closed
    resolved / closed -> reopened -> in_progress ...

``closed`` is reachable from every live status because upstream helpdesks
close spam and duplicates straight away, and ``ticket.closed`` is a fact we
must accept, not a request we may refuse. Moving to the status a ticket
already has is a no-op, so a ``ticket.updated`` that only changes priority
does not fail. Tickets are immutable: every change returns a new ``Ticket``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Literal, get_args

from services.feedback.domain.errors import IllegalTransition, InvalidValue
from services.feedback.domain.sla import Priority, SlaTicket, StatusChange, Tier, parse_priority

Status = Literal["open", "in_progress", "waiting_on_customer", "on_hold", "resolved", "closed", "reopened"]
STATUSES: tuple[Status, ...] = get_args(Status)
EntryKind = Literal["opened", "status_changed", "priority_changed", "category_changed", "agent_response", "note"]

TRANSITIONS: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        "open": frozenset({"in_progress", "on_hold", "resolved", "closed"}),
        "in_progress": frozenset({"waiting_on_customer", "on_hold", "resolved", "closed"}),
        "waiting_on_customer": frozenset({"in_progress", "on_hold", "resolved", "closed"}),
        "on_hold": frozenset({"in_progress", "resolved", "closed"}),
        "resolved": frozenset({"closed", "reopened"}),
        "closed": frozenset({"reopened"}),
        "reopened": frozenset({"in_progress", "waiting_on_customer", "on_hold", "resolved", "closed"}),
    }
)
# Entering one of these means an agent has answered the customer, even when
# the helpdesk did not flag a reply explicitly.
_IMPLIES_RESPONSE: frozenset[Status] = frozenset({"waiting_on_customer", "resolved"})


def parse_status(value: object, field_name: str = "status") -> Status:
    for status in STATUSES:
        if value == status:
            return status
    raise InvalidValue(field_name, f"must be one of {', '.join(STATUSES)}, got {value!r}")


def can_transition(from_status: Status, to_status: Status) -> bool:
    return from_status == to_status or to_status in TRANSITIONS[from_status]


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    kind: EntryKind
    actor: str | None = None
    detail: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Ticket:
    ticket_id: str
    customer_id: str
    status: Status
    priority: Priority
    category: str
    channel: str
    opened_at: datetime
    updated_at: datetime
    text: str = ""
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    status_history: tuple[StatusChange, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()

    @property
    def is_open(self) -> bool:
        """Still needs work (anything but resolved/closed)."""
        return self.status not in ("resolved", "closed")

    def sla_ticket(self, tier: Tier) -> SlaTicket:
        """The SLA clock's view; tier comes from the customer's profile, not the ticket."""
        return SlaTicket(
            self.ticket_id,
            tier,
            self.priority,
            self.opened_at,
            self.status_history,
            self.first_response_at,
        )


def open_ticket(
    ticket_id: str,
    customer_id: str,
    at: datetime,
    *,
    priority: str = "normal",
    category: str = "general",
    channel: str = "web",
    text: str = "",
) -> Ticket:
    if not ticket_id:
        raise InvalidValue("ticket_id", "must not be empty")
    if not customer_id:
        raise InvalidValue("customer_id", "must not be empty")
    return Ticket(
        ticket_id=ticket_id,
        customer_id=customer_id,
        status="open",
        priority=parse_priority(priority),
        category=category or "general",
        channel=channel or "web",
        opened_at=at,
        updated_at=at,
        text=text,
        status_history=(StatusChange(at, "open"),),
        timeline=(TimelineEntry(at, "opened", None, MappingProxyType({"priority": priority, "category": category})),),
    )


def transition(ticket: Ticket, to: Status, at: datetime, actor: str | None = None) -> Ticket:
    if to == ticket.status:
        return ticket
    if to not in TRANSITIONS[ticket.status]:
        raise IllegalTransition(ticket.ticket_id, ticket.status, to)
    first_response_at = ticket.first_response_at
    if first_response_at is None and to in _IMPLIES_RESPONSE:
        first_response_at = at
    return replace(
        ticket,
        status=to,
        updated_at=max(ticket.updated_at, at),
        first_response_at=first_response_at,
        resolved_at=at if to == "resolved" else (None if to == "reopened" else ticket.resolved_at),
        closed_at=at if to == "closed" else (None if to == "reopened" else ticket.closed_at),
        status_history=(*ticket.status_history, StatusChange(at, to)),
        timeline=(
            *ticket.timeline,
            TimelineEntry(at, "status_changed", actor, MappingProxyType({"from": ticket.status, "to": to})),
        ),
    )


@dataclass(frozen=True, slots=True)
class TicketChange:
    """One ``ticket.updated`` / ``ticket.closed`` worth of change; None = unchanged."""

    at: datetime
    status: Status | None = None
    priority: Priority | None = None
    category: str | None = None
    agent_response: bool = False  # an agent replied to the customer in this update
    actor: str | None = None
    note: str | None = None


def apply_change(ticket: Ticket, change: TicketChange) -> Ticket:
    at = change.at
    entries: list[TimelineEntry] = []
    updated = ticket
    if change.agent_response and updated.first_response_at is None:
        updated = replace(updated, first_response_at=at)
    if change.agent_response:
        entries.append(TimelineEntry(at, "agent_response", change.actor))
    if change.priority is not None and change.priority != updated.priority:
        entries.append(
            TimelineEntry(
                at,
                "priority_changed",
                change.actor,
                MappingProxyType({"from": updated.priority, "to": change.priority}),
            )
        )
        updated = replace(updated, priority=change.priority)
    if change.category is not None and change.category != updated.category:
        entries.append(
            TimelineEntry(
                at,
                "category_changed",
                change.actor,
                MappingProxyType({"from": updated.category, "to": change.category}),
            )
        )
        updated = replace(updated, category=change.category)
    if change.note:
        entries.append(TimelineEntry(at, "note", change.actor, MappingProxyType({"text": change.note})))
    updated = replace(updated, timeline=(*updated.timeline, *entries), updated_at=max(updated.updated_at, at))
    if change.status is not None:
        updated = transition(updated, change.status, at, change.actor)
    return updated


def change_from_event(event_type: str, data: Mapping[str, object], at: datetime) -> TicketChange:
    """Parse a ``ticket.updated`` / ``ticket.closed`` payload; errors name the field."""
    if event_type == "ticket.closed":
        status: Status | None = "closed"
    elif event_type == "ticket.updated":
        raw = data.get("status")
        status = None if raw is None else parse_status(raw, "data.status")
    else:
        raise InvalidValue("type", f"not a ticket change event: {event_type!r}")
    raw_priority = data.get("priority")
    raw_category = data.get("category")
    if raw_category is not None and not isinstance(raw_category, str):
        raise InvalidValue("data.category", "must be a string")
    actor = data.get("agent_id")
    note = data.get("text")
    return TicketChange(
        at=at,
        status=status,
        priority=None if raw_priority is None else parse_priority(raw_priority, "data.priority"),
        category=raw_category or None,
        agent_response=data.get("agent_response") is True,
        actor=actor if isinstance(actor, str) else None,
        note=note if isinstance(note, str) and note else None,
    )


def apply_event(
    ticket: Ticket | None, event_type: str, customer_id: str, data: Mapping[str, object], at: datetime
) -> Ticket:
    """Fold one upstream ticket event into the ticket's state.

    ``ticket.opened`` on an existing ticket is a redelivery with a new event id
    and returns the ticket unchanged; a change for an unknown ticket is an error
    (the opened event was lost or is late), left to the service to dead-letter.
    """
    ticket_id = data.get("ticket_id")
    if not isinstance(ticket_id, str) or not ticket_id:
        raise InvalidValue("data.ticket_id", "must be a non-empty string")
    if ticket is not None and ticket.ticket_id != ticket_id:
        raise InvalidValue("data.ticket_id", f"event is for {ticket_id}, state is {ticket.ticket_id}")
    if event_type == "ticket.opened":
        if ticket is not None:
            return ticket
        return open_ticket(
            ticket_id,
            customer_id,
            at,
            priority=_opt_str(data, "priority") or "normal",
            category=_opt_str(data, "category") or "general",
            channel=_opt_str(data, "channel") or "web",
            text=_opt_str(data, "text") or "",
        )
    if ticket is None:
        raise InvalidValue("data.ticket_id", f"unknown ticket {ticket_id}")
    return apply_change(ticket, change_from_event(event_type, data, at))


def _opt_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"data.{key}", "must be a string")
    return value
