"""The "as of" clock of docs/architecture.md: wall time live, newest event time when replaying history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def wall_clock() -> datetime:
    """The default injectable clock; tests pass their own."""
    return datetime.now(UTC)


def as_of(mode: str, newest_event_time: datetime | None, wall: Callable[[], datetime] = wall_clock) -> datetime:
    """The newest event time in replay mode (when there is one), otherwise `wall()`: the one rule every service
    follows, so a replayed history gives the same answers as living through it."""
    if mode == "replay" and newest_event_time is not None:
        return newest_event_time
    return wall()
