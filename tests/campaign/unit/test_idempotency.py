from __future__ import annotations

import hashlib
import json

from services.campaign.domain.idempotency import idempotency_key


def test_key_is_stable_sha256_of_the_parts() -> None:
    key = idempotency_key("camp-1", "c-42", "day:2026-11-20")
    expected = hashlib.sha256(json.dumps(["camp-1", "c-42", "day:2026-11-20"], separators=(",", ":")).encode())
    assert key == expected.hexdigest()
    assert key == idempotency_key("camp-1", "c-42", "day:2026-11-20")
    # Pinned literal: a change here would break uniqueness against keys already stored.
    assert key == "f187a1e0698c1a26a23a0368b89b5b1b51d5d6a40ba38c0e69ef3c471039587a"


def test_key_differs_per_part_and_cannot_be_forged_by_separators() -> None:
    keys = {
        idempotency_key("camp-1", "c-42", "w"),
        idempotency_key("camp-2", "c-42", "w"),
        idempotency_key("camp-1", "c-43", "w"),
        idempotency_key("camp-1", "c-42", "w2"),
        idempotency_key("a|b", "c", "w"),
        idempotency_key("a", "b|c", "w"),
        idempotency_key("camp-1", "c-42", "w", action_index=0),
        idempotency_key("camp-1", "c-42", "w", action_index=1),
    }
    assert len(keys) == 8
