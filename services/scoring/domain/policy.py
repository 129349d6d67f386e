"""How the service applies the models: the small-base fallback, the stored score document and the
events a change produces. Pure, so the handlers only move data in and out."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from libs.common.envelope import format_time
from services.scoring.domain.customer_score import (
    CustomerFacts,
    CustomerScore,
    ScoringConfig,
    ScoringModel,
    score_customer,
)
from services.scoring.domain.lifecycle import Stage
from services.scoring.domain.rfm import Tier
from services.scoring.domain.small_base import SmallBaseConfig, prior_model, tier_for_spend
from services.scoring.domain.thresholds import ChangeConfig, CrossingKind, ScoreSnapshot, detect_changes


@dataclass(frozen=True, eq=False)
class ActiveModel:
    """The model customers are scored with. ``small_base``: too few buyers for base-relative tiers."""

    version: int | None
    model: ScoringModel
    small_base: bool


NO_MODEL = ActiveModel(version=None, model=prior_model(), small_base=True)


def score(
    facts: CustomerFacts,
    as_of: datetime,
    active: ActiveModel,
    previous: ScoreSnapshot | None,
    config: ScoringConfig,
    small_base: SmallBaseConfig,
) -> CustomerScore:
    result = score_customer(facts, as_of, active.model, previous, config)
    if active.small_base:
        result = replace(result, tier=tier_for_spend(facts.total_spend, small_base), value_basis="spend")
    return result


def _round(value: float | None, digits: int = 6) -> float | None:
    # NaN/inf are not JSON and mean "no usable figure"
    return None if value is None or not math.isfinite(value) else round(value, digits)


def reason_dicts(result: CustomerScore) -> list[dict[str, Any]]:
    return [
        {
            "code": r.code.value,
            "message": r.message,
            "numbers": {k: _round(v) for k, v in r.numbers.items()},
            "contribution": _round(r.contribution),
        }
        for r in result.churn.reasons
    ]


def value_reason(result: CustomerScore, facts: CustomerFacts, small_base: SmallBaseConfig) -> dict[str, Any]:
    """Why the customer has their tier, with the numbers behind it."""
    if result.value_basis == "spend":
        return {
            "code": "total_spend",
            "message": f"total spend {facts.total_spend:.2f} (small base: high >= {small_base.high_spend:g}, "
            f"medium >= {small_base.medium_spend:g})",
            "numbers": {"total_spend": facts.total_spend},
        }
    basis = "lifetime value" if result.value_basis == "clv" else "RFM score"
    numbers: dict[str, Any] = {"value_rank": _round(result.value_rank), "rfm_score": result.rfm.composite}
    if result.clv is not None:
        numbers["clv"] = _round(result.clv, 2)
    return {
        "code": f"{result.value_basis}_rank",
        "message": f"{basis} ranks above {result.value_rank * 100:.0f} % of buyers",
        "numbers": numbers,
    }


def score_document(
    result: CustomerScore, facts: CustomerFacts, version: int | None, small_base: SmallBaseConfig
) -> dict[str, Any]:
    """What is stored per customer and served by the API; `score.changed` carries the same fields."""
    rfm = result.rfm
    return {
        "tier": result.tier.value,
        "stage": result.stage.value,
        "churn_risk": _round(result.churn.risk),
        "reasons": reason_dicts(result),
        "value": value_reason(result, facts, small_base),
        "value_basis": result.value_basis,
        "value_rank": _round(result.value_rank),
        "clv": _round(result.clv, 4),
        "p_alive": _round(result.p_alive),
        "expected_purchases_30d": _round(result.expected_purchases_30d),
        "expected_purchases_90d": _round(result.expected_purchases_90d),
        "predicted_next_purchase_at": (
            None if result.predicted_next_purchase_at is None else format_time(result.predicted_next_purchase_at)
        ),
        "rfm": {
            "r": rfm.r,
            "f": rfm.f,
            "m": rfm.m,
            "score": rfm.composite,
            "code": rfm.code,
            "recency_days": _round(rfm.values.recency_days, 3),
            "frequency": rfm.values.frequency,
            "monetary": _round(rfm.values.monetary, 4),
        },
        "total_spend": facts.total_spend,
        "purchase_count": facts.purchase_count,
        "model_version": version,
        "as_of": format_time(result.as_of),
    }


def snapshot_of(document: dict[str, Any]) -> ScoreSnapshot:
    """The comparison snapshot of a stored score document."""
    return ScoreSnapshot(
        tier=Tier(document["tier"]),
        stage=Stage(document["stage"]),
        churn_risk=float(document["churn_risk"]),
        churn_reasons=tuple(r["code"] for r in document.get("reasons", [])),
        clv=document.get("clv"),
    )


@dataclass(frozen=True)
class Outgoing:
    """An event to emit; ``key`` makes its id unique among the events one cause produces."""

    type: str
    key: str
    data: dict[str, Any]


SCORE_CHANGED_FIELDS = (
    "tier",
    "stage",
    "churn_risk",
    "reasons",
    "clv",
    "expected_purchases_30d",
    "expected_purchases_90d",
    "predicted_next_purchase_at",
    "rfm",
    "value",
    "total_spend",
    "model_version",
)


def outgoing_events(previous: dict[str, Any] | None, document: dict[str, Any], change: ChangeConfig) -> list[Outgoing]:
    """`threshold.crossed` per crossing and one `score.changed` when the change is material."""
    new = snapshot_of(document)
    assessment = detect_changes(None if previous is None else snapshot_of(previous), new, change)
    out: list[Outgoing] = []
    if assessment.material:
        out.append(Outgoing("score.changed", "score", {k: document[k] for k in SCORE_CHANGED_FIELDS}))
    for crossing in assessment.crossings:
        reasons = (
            [document["value"]]
            if crossing.kind in (CrossingKind.TIER_UP, CrossingKind.TIER_DOWN)
            else document["reasons"]
        )
        old: str | float | None = crossing.old
        new_value: str | float = crossing.new
        if crossing.level is not None:
            # churn crossings carry the risks as numbers, tier/stage crossings carry names
            old = None if crossing.old is None else float(crossing.old)
            new_value = float(crossing.new)
        data: dict[str, Any] = {"kind": crossing.kind.value, "old": old, "new": new_value, "reasons": reasons}
        key = crossing.kind.value
        if crossing.level is not None:
            data["level"] = crossing.level
            key += f"@{crossing.level}"
        out.append(Outgoing("threshold.crossed", key, data))
    return out
