"""The derived event contracts (libs.common.contracts): the registry, the wire form, tolerant reading, the docs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from libs.common.consumer import PoisonEvent
from libs.common.contracts import (
    CONTRACTS,
    Cause,
    ContractViolation,
    CouponIssued,
    FeedbackReceived,
    ProfileMetrics,
    ProfileUpdated,
    ScoreChanged,
    ThresholdCrossed,
    derived,
    events_table,
    metrics_list,
    parse,
    read,
    types_on,
)
from libs.common.envelope import CloudEvent
from libs.common.topics import (
    ALL_TOPICS,
    CAMPAIGN_ACTIONS,
    CUSTOMER_EVENTS,
    FEEDBACK_EVENTS,
    INSIGHTS_EVENTS,
    PROFILE_CHANGES,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def on_the_wire(event: CloudEvent) -> CloudEvent:
    """The event as a consumer receives it: through the Kafka encoding."""
    _, value, headers = event.to_kafka()
    return CloudEvent.from_kafka(value, headers)


def received(type_: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent("e-1", "retain/test", type_, "c-1", AT, data)


def test_docs_table_and_metrics_are_the_generated_ones() -> None:
    text = DOCS.read_text()
    assert events_table() in text
    assert metrics_list() in text


def test_every_derived_type_named_in_the_docs_has_a_contract() -> None:
    named = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS.read_text(), flags=re.MULTILINE))
    assert named == set(CONTRACTS)


def test_each_topic_declares_its_types_once() -> None:
    assert types_on(PROFILE_CHANGES) == {"profile.updated", "profile.merged", "profile.aliased", "customer.erased"}
    assert types_on(FEEDBACK_EVENTS) == {"feedback.received", "feedback.contacted", "sla.breached"}
    assert types_on(CUSTOMER_EVENTS) == frozenset()
    assert types_on(INSIGHTS_EVENTS) == {"kpi.anomaly", "churn.report_ready", "segments.changed"}
    assert {contract.topic for contract in CONTRACTS.values()} == set(ALL_TOPICS) - {CUSTOMER_EVENTS}
    assert sum(len(types_on(topic)) for topic in ALL_TOPICS) == len(CONTRACTS)


def test_derived_takes_type_and_topic_from_the_contract_and_money_travels_as_a_decimal_string() -> None:
    coupon = CouponIssued(
        campaign_id="welcome",
        code="W-1",
        discount_type="amount",
        value=Decimal("10.50"),
        currency="EUR",
        expires_at=AT,
    )
    topic, event = derived(coupon, cause="k-1", source="retain/campaign", subject="c-1", time=AT)
    assert (topic, event.type) == (CAMPAIGN_ACTIONS, "coupon.issued")
    wire = orjson.loads(event.to_kafka()[1])
    assert wire["value"] == "10.50" and wire["expires_at"] == "2026-03-01T12:30:00Z"
    assert parse(on_the_wire(event), CouponIssued) == coupon
    again = derived(coupon, cause="k-1", source="retain/campaign", subject="c-1", time=AT)[1]
    assert again.id == event.id


def test_money_sent_as_a_json_number_before_is_still_read() -> None:
    old = received(
        "coupon.issued",
        {
            "campaign_id": "w",
            "code": "X",
            "discount_type": "percent",
            "value": 15.0,
            "currency": None,
            "expires_at": "2026-04-01T00:00:00Z",
        },
    )
    coupon = parse(old, CouponIssued)
    assert coupon.value == Decimal("15.0") and coupon.expires_at == datetime(2026, 4, 1, tzinfo=UTC)


def test_producers_cannot_send_an_undeclared_field_but_readers_ignore_one() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FeedbackReceived.model_validate({"score_type": "nps", "score": 9, "sentiment": "positive", "mood": "ok"})
    newer = received("feedback.received", {"score_type": "nps", "score": 9, "sentiment": "positive", "mood": "ok"})
    assert parse(newer, FeedbackReceived) == FeedbackReceived(score_type="nps", score=9, sentiment="positive")


def test_optional_fields_are_left_out_while_empty_and_nullable_ones_stay() -> None:
    complaint = FeedbackReceived(score_type="complaint", category="delivery", sentiment="negative")
    assert complaint.wire() == {"score_type": "complaint", "category": "delivery", "sentiment": "negative"}
    crossing = ThresholdCrossed(kind="tier_up", old=None, new="high", reasons=[])
    assert crossing.wire() == {"kind": "tier_up", "old": None, "new": "high", "reasons": []}


def test_data_that_does_not_match_is_a_poison_event_naming_the_field() -> None:
    bad = received("sla.breached", {"ticket_id": "t-1", "clock": "lunch", "tier": "high", "priority": "high"})
    with pytest.raises(ContractViolation) as caught:
        read(bad)
    assert isinstance(caught.value, PoisonEvent)
    message = str(caught.value)
    assert "data.clock" in message and "data.target_s" in message and "SlaBreached" in message


def test_a_type_without_a_contract_is_a_poison_event() -> None:
    with pytest.raises(ContractViolation, match="not a derived event type"):
        read(received("profile.renamed", {}))


def test_a_profile_update_from_before_a_metric_existed_is_read_with_its_default() -> None:
    old = received(
        "profile.updated",
        {"cause": {"id": "x", "type": "purchase"}, "changed": ["orders"], "metrics": {"total_spend": 95.0}},
    )
    update = parse(old, ProfileUpdated)
    assert update.metrics.total_spend == Decimal("95.0") and update.metrics.consents == {}
    assert update.segments_entered == [] and update.cause == Cause(id="x", type="purchase")


def test_every_contract_round_trips_through_kafka() -> None:
    metrics = ProfileMetrics(customer_id="c-1", total_spend=Decimal("95.5"), last_purchase_at=AT, tags=["vip"])
    samples = [
        ProfileUpdated(cause=Cause(id="e", type="purchase"), changed=["orders"], metrics=metrics),
        ScoreChanged.model_validate(
            {
                "tier": "high",
                "stage": "active",
                "churn_risk": 0.1,
                "reasons": [{"code": "no_login", "message": "m", "numbers": {"days": 40.0}, "contribution": 0.2}],
                "clv": "310.25",
                "value": {"code": "clv_rank", "message": "m", "numbers": {"clv": 310.25}},
                "total_spend": "1520.50",
                "expected_purchases_30d": 0.4,
                "expected_purchases_90d": 1.1,
                "predicted_next_purchase_at": None,
                "model_version": 3,
                "rfm": {"r": 5, "f": 4, "m": 5, "score": 4.7, "code": "545", "monetary": 300.1},
            }
        ),
    ]
    for sample in samples:
        _, event = derived(sample, cause="c", source="retain/test", subject="c-1", time=AT)
        assert read(on_the_wire(event)) == sample
