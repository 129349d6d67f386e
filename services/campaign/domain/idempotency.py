"""Deterministic idempotency keys for external effects (coupon, message, alert).

The key is unique in the database, so a redelivered or replayed event that would send the
same thing again collides with the first send instead of repeating it.
"""

from __future__ import annotations

import hashlib
import json


def idempotency_key(campaign_id: str, customer_id: str, window: str, *, action_index: int | None = None) -> str:
    """sha256 hex of the parts; `action_index` separates the several actions of one campaign.

    The parts are JSON-encoded as a list rather than joined with a separator, so that
    ("a|b", "c") and ("a", "b|c") can never produce the same key.
    """
    parts: list[str | int] = [campaign_id, customer_id, window]
    if action_index is not None:
        parts.append(action_index)
    payload = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
