"""Calendar periods in UTC: ISO weeks (Monday first), months and quarters, each named by its first day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum


class Grain(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


GRAINS: tuple[Grain, ...] = (Grain.WEEK, Grain.MONTH, Grain.QUARTER)


def period_start(day: date, grain: Grain) -> date:
    if grain is Grain.WEEK:
        return day - timedelta(days=day.weekday())
    if grain is Grain.MONTH:
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _add_months(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def shift(start: date, grain: Grain, periods: int) -> date:
    """The start of the period `periods` after (negative: before) the one starting at `start`."""
    if grain is Grain.WEEK:
        return start + timedelta(weeks=periods)
    return _add_months(start, periods * (1 if grain is Grain.MONTH else 3))


def period_end(start: date, grain: Grain) -> date:
    """The first day after the period (exclusive end)."""
    return shift(start, grain, 1)


def periods_between(first: date, last: date, grain: Grain) -> Iterator[date]:
    """Starts of every period from the one holding `first` to the one holding `last`, both included."""
    current, final = period_start(first, grain), period_start(last, grain)
    while current <= final:
        yield current
        current = shift(current, grain, 1)


def periods_apart(earlier: date, later: date, grain: Grain) -> int:
    """How many periods separate two period starts of one grain."""
    if grain is Grain.WEEK:
        return (later - earlier).days // 7
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    return months if grain is Grain.MONTH else months // 3


def label(start: date, grain: Grain) -> str:
    if grain is Grain.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grain is Grain.MONTH:
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()
