"""SLA targets per (customer tier, priority) and the pausable SLA clocks.

Two clocks run per ticket, both from the moment it was opened:

* ``first_response`` stops at the first agent response (or at the first
  resolve/close, because resolving is itself an answer to the customer);
* ``resolution`` stops while the ticket is resolved/closed and starts again
  on reopen, so a reopened ticket keeps the time it already used.

Both exclude time spent in a paused status (waiting on the customer, on hold):
the customer is not kept waiting by us then. Time is calendar time, not
business hours, and is always passed in, so replaying history reproduces the
same breaches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, get_args

from services.feedback.domain.errors import InvalidValue

Tier = Literal["vip", "high", "medium", "low"]
Priority = Literal["urgent", "high", "normal", "low"]
ClockName = Literal["first_response", "resolution"]
ClockState = Literal["running", "paused", "stopped"]

TIERS: tuple[Tier, ...] = get_args(Tier)
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
CLOCKS: tuple[ClockName, ...] = get_args(ClockName)

RUNNING_STATUSES = frozenset({"open", "in_progress", "reopened"})
PAUSED_STATUSES = frozenset({"waiting_on_customer", "on_hold"})
STOPPED_STATUSES = frozenset({"resolved", "closed"})
KNOWN_STATUSES = RUNNING_STATUSES | PAUSED_STATUSES | STOPPED_STATUSES


def parse_tier(value: object, field_name: str = "tier") -> Tier:
    for tier in TIERS:
        if value == tier:
            return tier
    raise InvalidValue(field_name, f"must be one of {', '.join(TIERS)}, got {value!r}")


def parse_priority(value: object, field_name: str = "priority") -> Priority:
    for priority in PRIORITIES:
        if value == priority:
            return priority
    raise InvalidValue(field_name, f"must be one of {', '.join(PRIORITIES)}, got {value!r}")


@dataclass(frozen=True, slots=True)
class SlaTarget:
    first_response: timedelta
    resolution: timedelta

    def for_clock(self, clock: ClockName) -> timedelta:
        return self.first_response if clock == "first_response" else self.resolution


# Targets for the top tier; lower tiers scale these out. "vip" and "high" are
# the same tier under two names (profile calls it high, support calls it VIP).
_TOP_TIER: dict[Priority, SlaTarget] = {
    "urgent": SlaTarget(timedelta(minutes=5), timedelta(hours=4)),
    "high": SlaTarget(timedelta(minutes=15), timedelta(hours=8)),
    "normal": SlaTarget(timedelta(hours=1), timedelta(hours=24)),
    "low": SlaTarget(timedelta(hours=4), timedelta(hours=72)),
}
_TIER_FACTOR: dict[Tier, int] = {"vip": 1, "high": 1, "medium": 2, "low": 4}


@dataclass(frozen=True, slots=True)
class SlaTable:
    targets: Mapping[tuple[Tier, Priority], SlaTarget]

    def target(self, tier: str, priority: str) -> SlaTarget:
        key = (parse_tier(tier), parse_priority(priority))
        try:
            return self.targets[key]
        except KeyError:
            raise InvalidValue("priority", f"no SLA defined for tier {tier}, priority {priority}") from None

    @classmethod
    def default(cls) -> SlaTable:
        return cls(
            {
                (tier, prio): SlaTarget(t.first_response * factor, t.resolution * factor)
                for tier, factor in _TIER_FACTOR.items()
                for prio, t in _TOP_TIER.items()
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, object], base: SlaTable | None = None) -> SlaTable:
        """Overlay configuration on ``base`` (the default table when omitted).

        Shape, in minutes so YAML/env config stays readable::

            {"vip": {"urgent": {"first_response_minutes": 5, "resolution_minutes": 240}}}

        Cells not mentioned keep the base value, so a config can tune one cell.
        """
        merged = dict((base or cls.default()).targets)
        for tier_key, row in data.items():
            tier = parse_tier(tier_key, "sla.tier")
            if not isinstance(row, Mapping):
                raise InvalidValue(f"sla.{tier}", "must be a mapping of priority to targets")
            for prio_key, cell in row.items():
                prio = parse_priority(prio_key, f"sla.{tier}.priority")
                path = f"sla.{tier}.{prio}"
                if not isinstance(cell, Mapping):
                    raise InvalidValue(path, "must be a mapping with *_minutes keys")
                old = merged.get((tier, prio))
                merged[(tier, prio)] = SlaTarget(
                    _minutes(cell, "first_response_minutes", path, old.first_response if old else None),
                    _minutes(cell, "resolution_minutes", path, old.resolution if old else None),
                )
        return cls(merged)


def _minutes(cell: Mapping[str, object], key: str, path: str, fallback: timedelta | None) -> timedelta:
    raw = cell.get(key)
    if raw is None:
        if fallback is None:
            raise InvalidValue(f"{path}.{key}", "is required")
        return fallback
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise InvalidValue(f"{path}.{key}", f"must be a positive number of minutes, got {raw!r}")
    return timedelta(minutes=raw)


DEFAULT_SLA_TABLE = SlaTable.default()


@dataclass(frozen=True, slots=True)
class StatusChange:
    at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class SlaTicket:
    """What the SLA clock needs to know about a ticket.

    ``history`` need not include the initial ``open``; time before the first
    entry counts as open. Entries are sorted by time (stable) before use.
    """

    ticket_id: str
    tier: Tier
    priority: Priority
    opened_at: datetime
    history: tuple[StatusChange, ...] = ()
    first_response_at: datetime | None = None

    def __post_init__(self) -> None:
        parse_tier(self.tier)
        parse_priority(self.priority)
        for change in self.history:
            if change.status not in KNOWN_STATUSES:
                raise InvalidValue("status", f"unknown ticket status {change.status!r}")


@dataclass(frozen=True, slots=True)
class ClockReading:
    clock: ClockName
    target: timedelta
    elapsed: timedelta
    remaining: timedelta  # negative once breached
    state: ClockState
    due_at: datetime | None  # only while running: paused/stopped clocks have no deadline
    deadline_reached_at: datetime | None  # when elapsed hit the target, if it did by now
    breached: bool


@dataclass(frozen=True, slots=True)
class Breach:
    ticket_id: str
    clock: ClockName
    target: timedelta
    elapsed: timedelta
    breached_at: datetime  # the instant the target was used up
    detected_at: datetime  # the ``now`` at which we noticed

    @property
    def key(self) -> str:
        """Idempotency key for the ``sla.breached`` event (once per ticket and clock)."""
        return f"{self.ticket_id}:{self.clock}"


@dataclass(frozen=True, slots=True)
class _Segment:
    start: datetime
    end: datetime
    status: str


@dataclass(frozen=True, slots=True)
class SlaClock:
    ticket: SlaTicket
    table: SlaTable = field(default_factory=lambda: DEFAULT_SLA_TABLE)

    @property
    def target(self) -> SlaTarget:
        return self.table.target(self.ticket.tier, self.ticket.priority)

    def _segments(self, until: datetime) -> list[_Segment]:
        # Changes after ``until`` are ignored so a reading "as of" a past
        # instant is the same whenever it is computed.
        changes = sorted((c for c in self.ticket.history if c.at <= until), key=lambda c: c.at)
        segments: list[_Segment] = []
        cursor, status = self.ticket.opened_at, "open"
        for change in changes:
            if change.at > cursor:
                segments.append(_Segment(cursor, change.at, status))
                cursor = change.at
            status = change.status
        if until > cursor:
            segments.append(_Segment(cursor, until, status))
        return segments

    def _stop_at(self, clock: ClockName, now: datetime) -> datetime | None:
        if clock == "resolution":
            return None
        candidates = [c.at for c in self.ticket.history if c.status in STOPPED_STATUSES and c.at <= now]
        if self.ticket.first_response_at is not None and self.ticket.first_response_at <= now:
            candidates.append(self.ticket.first_response_at)
        return max(min(candidates), self.ticket.opened_at) if candidates else None

    def _current_status(self, now: datetime) -> str:
        status = "open"
        # Stable sort keeps the later-recorded of two same-instant changes last.
        for change in sorted(self.ticket.history, key=lambda c: c.at):
            if change.at > now:
                break
            status = change.status
        return status

    def reading(self, clock: ClockName, now: datetime) -> ClockReading:
        target = self.target.for_clock(clock)
        stop = self._stop_at(clock, now)
        until = min(now, stop) if stop is not None else now
        elapsed = timedelta(0)
        reached_at: datetime | None = None
        for seg in self._segments(until):
            if seg.status not in RUNNING_STATUSES:
                continue
            length = seg.end - seg.start
            if reached_at is None and elapsed + length >= target:
                reached_at = seg.start + (target - elapsed)
            elapsed += length
        if stop is not None:
            state: ClockState = "stopped"
        else:
            status = self._current_status(now)
            state = "running" if status in RUNNING_STATUSES else "paused" if status in PAUSED_STATUSES else "stopped"
        remaining = target - elapsed
        return ClockReading(
            clock=clock,
            target=target,
            elapsed=elapsed,
            remaining=remaining,
            state=state,
            due_at=now + remaining if state == "running" else None,
            deadline_reached_at=reached_at,
            # Reaching the target exactly is still on time; one tick over is not.
            breached=elapsed > target,
        )

    def readings(self, now: datetime) -> dict[ClockName, ClockReading]:
        return {clock: self.reading(clock, now) for clock in CLOCKS}

    def breaches(self, now: datetime) -> list[ClockName]:
        return [clock for clock in CLOCKS if self.reading(clock, now).breached]


def new_breaches(
    ticket: SlaTicket,
    now: datetime,
    already_raised: Iterable[str],
    table: SlaTable = DEFAULT_SLA_TABLE,
) -> list[Breach]:
    """Breaches not yet raised, so ``sla.breached`` goes out once per clock.

    ``already_raised`` holds clock names (``"first_response"``) or
    ``Breach.key`` values (``"<ticket>:<clock>"``); both are accepted so the
    service can store whichever is handier. The argument is not modified.
    """
    raised = set(already_raised)
    clock = SlaClock(ticket, table)
    result: list[Breach] = []
    for name in CLOCKS:
        if name in raised or f"{ticket.ticket_id}:{name}" in raised:
            continue
        r = clock.reading(name, now)
        if r.breached and r.deadline_reached_at is not None:
            result.append(Breach(ticket.ticket_id, name, r.target, r.elapsed, r.deadline_reached_at, now))
    return result
