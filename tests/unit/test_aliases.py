"""Reading profile's join announcements (libs.common.aliases.joined_ids)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from libs.common.aliases import JOIN_EVENT_TYPES, joined_ids
from libs.common.contracts import ContractViolation
from libs.common.envelope import CloudEvent


def announced(type_: str, data: dict[str, Any], subject: str = "c-1") -> CloudEvent:
    return CloudEvent("e-1", "profile", type_, subject, datetime(2026, 1, 1, tzinfo=UTC), data)


def test_both_announcements_name_the_joined_id_and_the_customer() -> None:
    assert JOIN_EVENT_TYPES == {"profile.merged", "profile.aliased"}
    assert joined_ids(announced("profile.merged", {"survivor_id": "c-1", "merged_id": "c-2"})) == ("c-2", "c-1")
    assert joined_ids(announced("profile.aliased", {"customer_id": "c-1", "alias_id": "erp-1"})) == ("erp-1", "c-1")


def test_an_announcement_off_its_contract_is_a_contract_violation() -> None:
    # Read through ProfileMerged / ProfileAliased: a missing or empty id is dead-lettered, not guessed.
    with pytest.raises(ContractViolation, match="survivor_id"):
        joined_ids(announced("profile.merged", {"merged_id": "c-2"}, subject="c-1"))
    with pytest.raises(ContractViolation, match="merged_id"):
        joined_ids(announced("profile.merged", {"survivor_id": "c-1"}))
    with pytest.raises(ContractViolation, match="alias_id"):
        joined_ids(announced("profile.aliased", {"customer_id": "c-1", "alias_id": ""}))


def test_other_or_self_announcements_join_nothing() -> None:
    assert joined_ids(announced("profile.updated", {"merged_id": "c-2"})) is None
    assert joined_ids(announced("profile.merged", {"survivor_id": "c-1", "merged_id": "c-1"})) is None
