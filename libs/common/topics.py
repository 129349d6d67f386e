"""Topic names (docs/architecture.md); a prefix lets tests and tenants share one broker."""

from __future__ import annotations

CUSTOMER_EVENTS = "customer-events"
PROFILE_CHANGES = "profile-changes"
SCORE_CHANGES = "score-changes"
FEEDBACK_EVENTS = "feedback-events"
CAMPAIGN_ACTIONS = "campaign-actions"
INSIGHTS_EVENTS = "insights-events"
ALL_TOPICS = (CUSTOMER_EVENTS, PROFILE_CHANGES, SCORE_CHANGES, FEEDBACK_EVENTS, CAMPAIGN_ACTIONS, INSIGHTS_EVENTS)

DLQ_SUFFIX = ".dlq"


def dlq_of(topic: str) -> str:
    return topic + DLQ_SUFFIX


def qualified(prefix: str, topic: str) -> str:
    return f"{prefix}{topic}"
