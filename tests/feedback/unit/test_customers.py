"""Joining what feedback knows of one customer under two ids."""

from __future__ import annotations

from datetime import UTC, datetime

from services.feedback.domain.customers import CustomerRecord, joined

EARLY = datetime(2026, 1, 1, tzinfo=UTC)
LATE = datetime(2026, 2, 1, tzinfo=UTC)


def test_the_tier_scored_last_wins_whichever_id_it_came_under() -> None:
    assert joined(CustomerRecord("low", EARLY), CustomerRecord("high", LATE)).tier == "high"
    assert joined(CustomerRecord("low", LATE), CustomerRecord("high", EARLY)).tier == "low"
    assert joined(CustomerRecord("low", EARLY), CustomerRecord("high", EARLY)).tier == "low"  # a tie: the survivor


def test_a_tier_only_one_id_has_is_kept() -> None:
    assert joined(CustomerRecord(), CustomerRecord("high", EARLY)) == CustomerRecord("high", EARLY)
    assert joined(CustomerRecord("high", None), CustomerRecord()).tier == "high"
    assert joined(CustomerRecord(), CustomerRecord()) == CustomerRecord()


def test_segments_of_both_ids() -> None:
    both = joined(CustomerRecord(segments=("vip",), segments_at=EARLY), CustomerRecord(segments=("new", "vip")))
    assert (both.segments, both.segments_at) == (("new", "vip"), EARLY)
