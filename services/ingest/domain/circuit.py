"""Broker circuit: after a failed publish, requests skip the broker for a while and go to the outbox.

Without it every request would wait the full delivery timeout while the broker is down. After the
cool-off one request at a time probes the broker (half-open); its success closes the circuit.
Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Circuit:
    open_for_s: float
    opened_at: float | None = None
    probing: bool = False

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def allows(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if self.probing or now - self.opened_at < self.open_for_s:
            return False
        self.probing = True
        return True

    def succeeded(self) -> None:
        self.opened_at = None
        self.probing = False

    def failed(self, now: float) -> None:
        self.opened_at = now
        self.probing = False
