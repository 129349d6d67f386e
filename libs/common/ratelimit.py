"""Token-bucket arithmetic (pure: the caller passes the clock)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate_per_s: float
    capacity: float
    tokens: float
    updated_at: float

    @classmethod
    def full(cls, rate_per_s: float, burst_s: float, now: float) -> TokenBucket:
        # At least one token, or a rate below 1/burst_s could never admit a request.
        capacity = max(1.0, rate_per_s * burst_s)
        return cls(rate_per_s=rate_per_s, capacity=capacity, tokens=capacity, updated_at=now)

    def take(self, now: float, cost: float = 1.0) -> float:
        """Takes `cost` tokens and returns 0, or takes nothing and returns the seconds until it could."""
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated_at = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate_per_s


def retry_after_header(wait_s: float) -> str:
    """Retry-After takes whole seconds; rounding down would invite a retry that is refused again."""
    return str(max(1, math.ceil(wait_s)))
