"""The at-risk worklist: who to call first, why, and what to offer. Pure: scores and interactions in, rows out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Service interactions worth showing an account manager before the call (purchases and page views are not).
INTERACTION_TYPES = frozenset(
    {"ticket.opened", "ticket.updated", "ticket.closed", "survey.response", "feedback.contacted"}
)


@dataclass(frozen=True)
class Interaction:
    at: str  # RFC 3339, sorts as time
    kind: str
    summary: str


@dataclass(frozen=True)
class WorkItem:
    customer_id: str
    churn_risk: float
    value: float  # CLV when the model has one, otherwise spend so far
    value_basis: str
    clv_at_risk: float
    tier: str | None
    stage: str | None
    reasons: list[dict[str, Any]]
    interactions: list[Interaction] = field(default_factory=list)
    suggestion: str = ""
    last_contact_at: str | None = None


def value_of(score: Mapping[str, Any]) -> tuple[float, str]:
    clv = score.get("clv")
    if isinstance(clv, int | float) and clv > 0:
        return float(clv), "clv"
    return float(score.get("total_spend") or 0.0), "spend"


def rank(scores: Iterable[Mapping[str, Any]], level: float, size: int) -> list[WorkItem]:
    """Customers at or above `level`, largest CLV at risk (value x churn risk) first; ties by id, for a stable list."""
    items = []
    for score in scores:
        risk = float(score.get("churn_risk") or 0.0)
        if risk < level:
            continue
        value, basis = value_of(score)
        items.append(
            WorkItem(
                customer_id=str(score["customer_id"]),
                churn_risk=risk,
                value=value,
                value_basis=basis,
                clv_at_risk=round(value * risk, 2),
                tier=score.get("tier"),
                stage=score.get("stage"),
                reasons=list(score.get("reasons") or []),
            )
        )
    items.sort(key=lambda item: (-item.clv_at_risk, -item.churn_risk, item.customer_id))
    return items[:size]


def _plain(value: object) -> str:
    return ", ".join(str(item) for item in value) if isinstance(value, list | tuple) else str(value)


def describe(summary: object) -> str:
    """A timeline summary (a small mapping) as one line: `ticket_id t-1, priority urgent`."""
    if isinstance(summary, Mapping):
        return ", ".join(f"{key} {_plain(value)}" for key, value in summary.items() if value not in (None, "", []))
    return "" if summary is None else str(summary)


def last_interactions(
    timeline: Sequence[Mapping[str, Any]], contacts: Sequence[Mapping[str, Any]], count: int = 3
) -> list[Interaction]:
    found = [
        Interaction(str(item["time"]), str(item["type"]), describe(item.get("summary")))
        for item in timeline
        if item.get("type") in INTERACTION_TYPES
    ]
    found += [
        Interaction(
            str(contact["contacted_at"]),
            "feedback.contacted",
            f"{contact['channel']} by {contact['contacted_by']}: {contact['outcome']}",
        )
        for contact in contacts
    ]
    return sorted(found, key=lambda interaction: interaction.at, reverse=True)[:count]


# Strongest reason first decides; the texts are what an account manager does next.
SUGGESTIONS: dict[str, str] = {
    "sla_breach": "Apologise for the late answer and get the breached ticket resolved today",
    "open_complaints": "Call about the open complaint before offering anything else",
    "detractor_nps": "Call to hear what went wrong (they scored us low) and follow up in writing",
    "no_login": "Send a personal win-back message with what is new since their last visit",
    "engagement_drop": "Call to check in: purchases and logins both fell",
    "spend_off_baseline": "Offer a tailored coupon in their favourite category",
    "purchases_off_baseline": "Remind them of their usual order, with a loyalty bonus",
    "logins_off_baseline": "Send a how-to or a new feature they have not used",
    "model_dropout": "Reach out personally: the model thinks they may have stopped buying",
}


def suggestion(item: WorkItem) -> str:
    codes = [str(reason.get("code")) for reason in item.reasons]
    for code in codes:
        if code in SUGGESTIONS:
            text = SUGGESTIONS[code]
            return f"{text} (top tier: the account manager calls personally)" if item.tier == "high" else text
    return "Check in personally and ask how we can help"
