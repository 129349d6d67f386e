"""How campaign's facts about one customer known under two ids combine when profile joins the ids."""

from __future__ import annotations

from datetime import UTC, datetime

from services.campaign.domain.identity import merged_facts, stricter_consents

EARLY = datetime(2025, 1, 1, tzinfo=UTC)
LATE = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_survivors_values_win_and_the_merged_id_fills_gaps() -> None:
    survivor = {"name": "Ann", "email": None, "tier": "high", "segments": ["vip"]}
    merged = {"name": "Anne", "email": "ann@example.com", "tier": "low", "region": "EU", "segments": ["new", "vip"]}
    facts = merged_facts(survivor, merged)
    assert (facts["name"], facts["email"], facts["tier"], facts["region"]) == ("Ann", "ann@example.com", "high", "EU")
    assert facts["segments"] == ["vip", "new"]


def test_a_withdrawal_or_opt_out_under_either_id_stands() -> None:
    facts = merged_facts(
        {"consents": {"email": True, "sms": True}, "opted_out": False},
        {"consents": {"email": False, "push": True}, "opted_out": True},
    )
    assert facts["consents"] == {"email": False, "sms": True, "push": True}
    assert facts["opted_out"] is True
    assert merged_facts({}, {})["opted_out"] is False


def test_consent_only_one_id_mentions_keeps_that_ids_answer() -> None:
    assert stricter_consents({"sms": False}, {}) == {"sms": False}
    assert stricter_consents({}, {"sms": True}) == {"sms": True}


def test_purchase_and_activity_times_span_both_ids() -> None:
    facts = merged_facts(
        {"first_purchase_at": LATE, "last_purchase_at": LATE, "last_activity_at": None},
        {"first_purchase_at": EARLY, "last_purchase_at": EARLY, "last_activity_at": EARLY},
    )
    assert (facts["first_purchase_at"], facts["last_purchase_at"], facts["last_activity_at"]) == (EARLY, LATE, EARLY)
