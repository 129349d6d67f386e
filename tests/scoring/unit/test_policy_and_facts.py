"""The service's pure glue: folding events into facts, the small-base fallback, events out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.scoring.domain.customer_score import CustomerFacts, ScoringConfig
from services.scoring.domain.facts import StoredFacts, apply_feedback, apply_profile_metrics
from services.scoring.domain.policy import NO_MODEL, outgoing_events, score, score_document
from services.scoring.domain.rfm import Tier
from services.scoring.domain.small_base import SmallBaseConfig, tier_for_spend
from services.scoring.domain.thresholds import ChangeConfig

T0 = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spend", "tier"),
    [(0.0, Tier.LOW), (199.99, Tier.LOW), (200.0, Tier.MEDIUM), (999.0, Tier.MEDIUM), (1000.0, Tier.HIGH)],
)
def test_small_base_spend_rule(spend: float, tier: Tier) -> None:
    assert tier_for_spend(spend) is tier


def test_small_base_thresholds_are_configurable_and_validated() -> None:
    assert tier_for_spend(60.0, SmallBaseConfig(high_spend=50.0, medium_spend=10.0)) is Tier.HIGH
    with pytest.raises(ValueError):
        SmallBaseConfig(high_spend=10.0, medium_spend=50.0)


def test_the_profile_document_of_the_highest_version_stands_whatever_its_time() -> None:
    newer_version = apply_profile_metrics(StoredFacts("c"), {"last_nps": 9, "open_tickets": 1}, T0, version=5)
    # a document of a lower version arrives later with a newer event time (a redelivery): ignored
    stale = apply_profile_metrics(newer_version, {"last_nps": 2, "open_tickets": 0}, T0 + timedelta(days=1), 4)
    assert (stale.last_nps, stale.open_tickets, stale.profile_version) == (9, 1, 5)
    # a late purchase's document: an older event time, a higher version (one more event): it stands
    late = apply_profile_metrics(stale, {"last_nps": 9, "open_tickets": 2}, T0 - timedelta(days=3), version=6)
    assert (late.open_tickets, late.profile_version, late.last_event_at) == (2, 6, T0 + timedelta(days=1))
    # purchase facts are never taken from profile's metrics
    assert apply_profile_metrics(late, {"purchase_count": 3, "total_spend": 9.0}, T0, 7).purchase_count == 0


def test_profile_documents_applied_in_any_order_give_the_same_facts() -> None:
    documents = [
        ({"open_tickets": n, "last_login_at": f"2026-01-0{n}T00:00:00Z"}, T0 - timedelta(days=n), n)
        for n in range(1, 6)
    ]
    results = set()
    for order in (documents, documents[::-1], documents[2:] + documents[:2]):
        facts = StoredFacts("c")
        for metrics, at, version in order:
            facts = apply_profile_metrics(facts, metrics, at, version)
        results.add((facts.open_tickets, facts.last_login_at, facts.profile_version))
    assert results == {(5, datetime(2026, 1, 5, tzinfo=UTC), 5)}


def test_complaints_count_as_open_within_their_window_and_nps_keeps_the_newest() -> None:
    facts = StoredFacts("c")
    facts = apply_feedback(facts, "feedback.received", {"score_type": "complaint"}, T0, complaint_open_days=30)
    facts = apply_feedback(facts, "feedback.received", {"score_type": "complaint"}, T0 + timedelta(days=1), 30)
    facts = apply_feedback(facts, "feedback.received", {"score_type": "nps", "score": 4}, T0, 30)
    facts = apply_feedback(facts, "feedback.received", {"score_type": "nps", "score": 10}, T0 - timedelta(days=1), 30)
    assert facts.last_nps == 4  # the late, older answer does not replace the newer one
    assert facts.customer_facts(T0 + timedelta(days=5), 30, 90).open_complaints == 2
    assert facts.customer_facts(T0 + timedelta(days=40), 30, 90).open_complaints == 0
    breached = apply_feedback(facts, "sla.breached", {"ticket_id": "t"}, T0, 30)
    assert breached.customer_facts(T0 + timedelta(days=10), 30, 90).sla_breached
    assert not breached.customer_facts(T0 + timedelta(days=91), 30, 90).sla_breached


def _document(spend: float, at: datetime = T0) -> dict[str, Any]:
    customer = CustomerFacts("c", first_purchase_at=at, last_purchase_at=at, purchase_count=1, total_spend=spend)
    result = score(customer, at, NO_MODEL, None, ScoringConfig(), SmallBaseConfig())
    return score_document(result, customer, None, SmallBaseConfig())


def test_first_score_is_news_a_tier_change_crosses_and_no_change_is_silent() -> None:
    change = ChangeConfig()
    first = _document(120.5)
    assert [e.type for e in outgoing_events(None, first, change)] == ["score.changed"]
    assert outgoing_events(first, _document(150.0), change) == []  # same tier, stage and risk
    up = outgoing_events(first, _document(1020.5), change)
    assert [(e.type, e.data.get("kind")) for e in up] == [("score.changed", None), ("threshold.crossed", "tier_up")]
    crossing = up[1].data
    assert (crossing["old"], crossing["new"]) == ("low", "high")
    assert crossing["reasons"][0]["code"] == "total_spend"
    assert len({e.key for e in up}) == len(up)  # distinct keys give distinct derived event ids
