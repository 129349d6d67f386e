"""Tickets by SLA state, as the console groups them: breaches first, then those about to breach."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

SlaState = Literal["breached", "due_soon", "on_track", "paused", "met"]
ORDER: tuple[SlaState, ...] = ("breached", "due_soon", "on_track", "paused", "met")
# A running clock with less than this share of its target left is about to breach.
DUE_SOON_SHARE = 0.25


def sla_state(ticket: Mapping[str, Any]) -> SlaState:
    clocks = list((ticket.get("sla") or {}).values())
    if any(clock.get("breached_at") or (clock.get("remaining_s", 1) < 0) for clock in clocks):
        return "breached"
    running = [clock for clock in clocks if clock.get("state") == "running"]
    if any(clock.get("remaining_s", 0) < DUE_SOON_SHARE * max(clock.get("target_s", 0), 1) for clock in running):
        return "due_soon"
    if running:
        return "on_track"
    if any(clock.get("state") == "paused" for clock in clocks):
        return "paused"
    return "met"


def by_state(tickets: Iterable[Mapping[str, Any]]) -> dict[SlaState, list[Mapping[str, Any]]]:
    groups: dict[SlaState, list[Mapping[str, Any]]] = {state: [] for state in ORDER}
    for ticket in tickets:
        groups[sla_state(ticket)].append(ticket)
    return groups
