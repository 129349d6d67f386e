"""What a material change of a score is recorded as in the customer's score history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# the fields a history entry compares, in the order `changes` lists them
COMPARED = ("tier", "stage", "churn_risk", "clv", "reasons")


@dataclass(frozen=True)
class HistoryEntry:
    customer_id: str
    event_id: str  # the score.changed event the change went out as
    at: datetime
    as_of: datetime
    trigger: str  # event, refit or due
    cause_id: str
    model_version: int | None
    changes: list[str]
    tier: str
    stage: str
    churn_risk: float
    clv: float | None
    previous: dict[str, Any] | None
    reasons: list[dict[str, Any]]


def _reason_codes(document: dict[str, Any]) -> set[str]:
    return {reason["code"] for reason in document.get("reasons", [])}


def changed_fields(previous: dict[str, Any] | None, document: dict[str, Any]) -> list[str]:
    """Which compared fields differ; ``first_score`` when there was no score before."""
    if previous is None:
        return ["first_score"]
    changed = []
    for name in COMPARED:
        if name == "reasons":
            if _reason_codes(previous) != _reason_codes(document):
                changed.append(name)
        elif previous.get(name) != document.get(name):
            changed.append(name)
    if previous.get("model_version") != document.get("model_version"):
        changed.append("model_version")
    return changed


def history_entry(
    customer_id: str,
    event_id: str,
    *,
    at: datetime,
    as_of: datetime,
    trigger: str,
    cause_id: str,
    previous: dict[str, Any] | None,
    document: dict[str, Any],
) -> HistoryEntry:
    return HistoryEntry(
        customer_id=customer_id,
        event_id=event_id,
        at=at,
        as_of=as_of,
        trigger=trigger,
        cause_id=cause_id,
        model_version=document.get("model_version"),
        changes=changed_fields(previous, document),
        tier=document["tier"],
        stage=document["stage"],
        churn_risk=float(document["churn_risk"]),
        clv=document.get("clv"),
        previous=None if previous is None else {name: previous.get(name) for name in COMPARED[:4]},
        reasons=list(document.get("reasons", [])),
    )
