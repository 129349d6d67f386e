"""A/B tests with a holdout: deterministic assignment and the uplift report.

Assignment is a pure function of (campaign, customer), so every replica and every replay puts
a customer in the same group without storing anything first.

Conversion rates are per assigned audience (intention to treat), not per message sent: the
holdout is never sent anything, so dividing by "sent" would compare unlike groups.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scipy.stats import norm

from services.campaign.domain.definitions import HOLDOUT, CampaignDefinition

# A campaign without variants still has one treatment group.
DEFAULT_VARIANT = "control"
Z_95 = float(norm.ppf(0.975))


def _unit_interval(campaign_id: str, customer_id: str) -> float:
    digest = hashlib.sha256(f"{campaign_id}\x1f{customer_id}".encode()).digest()
    # 53 bits fill a float's mantissa exactly, so every value in [0, 1) is equally likely.
    return (int.from_bytes(digest[:8], "big") >> 11) / float(1 << 53)


def assign(
    campaign_id: str,
    customer_id: str,
    variants: Sequence[tuple[str, float]],
    holdout_percent: float = 0.0,
) -> str:
    """`HOLDOUT` or the name of a variant, chosen by weight; `DEFAULT_VARIANT` if none given."""
    u = _unit_interval(campaign_id, customer_id)
    holdout = holdout_percent / 100.0
    if u < holdout:
        return HOLDOUT
    if not variants:
        return DEFAULT_VARIANT
    # Rescale the rest of [0, 1) so changing the holdout does not reshuffle variant shares.
    u = (u - holdout) / (1.0 - holdout)
    total = sum(weight for _, weight in variants)
    cumulative = 0.0
    for name, weight in variants:
        cumulative += weight / total
        if u < cumulative:
            return name
    return variants[-1][0]  # float rounding can leave u a hair above the last boundary


def assign_variant(campaign_id: str, customer_id: str, campaign: CampaignDefinition) -> str:
    return assign(
        campaign_id,
        customer_id,
        [(variant.name, variant.weight) for variant in campaign.variants],
        campaign.holdout_percent,
    )


@dataclass(frozen=True)
class ABRow:
    """One customer's outcome in a campaign."""

    variant: str
    sent: bool
    converted: bool


@dataclass(frozen=True)
class GroupCounts:
    audience: int
    sent: int
    converted: int


@dataclass(frozen=True)
class VariantReport:
    variant: str
    audience: int
    sent: int
    converted: int
    conversion_rate: float | None
    # Versus the holdout; None for the holdout itself, or when either group is empty.
    uplift: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    z: float | None = None
    p_value: float | None = None


def _compare(name: str, group: GroupCounts, holdout: GroupCounts | None) -> VariantReport:
    n1, x1 = group.audience, group.converted
    rate = x1 / n1 if n1 else None
    base = VariantReport(name, n1, group.sent, x1, rate)
    if holdout is None or not holdout.audience or rate is None:
        return base
    n0, x0 = holdout.audience, holdout.converted
    p0 = x0 / n0
    uplift = rate - p0
    # Wald interval: unpooled SE, since under the alternative the two rates differ.
    se_unpooled = math.sqrt(rate * (1 - rate) / n1 + p0 * (1 - p0) / n0)
    ci_low, ci_high = uplift - Z_95 * se_unpooled, uplift + Z_95 * se_unpooled
    # The test assumes H0 (equal rates), so the SE uses the pooled rate.
    pooled = (x0 + x1) / (n0 + n1)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    z: float | None = None
    p_value: float | None = None
    if se_pooled > 0:  # zero only when both groups convert all or none: no evidence either way
        z = uplift / se_pooled
        p_value = float(2 * norm.sf(abs(z)))
    return VariantReport(name, n1, group.sent, x1, rate, uplift, ci_low, ci_high, z, p_value)


def ab_report_from_counts(groups: Mapping[str, GroupCounts]) -> list[VariantReport]:
    """One report per group, the holdout first, then the variants by name."""
    holdout = groups.get(HOLDOUT)
    names = sorted(name for name in groups if name != HOLDOUT)
    reports = [_compare(name, groups[name], holdout) for name in names]
    if holdout is not None:
        reports.insert(0, _compare(HOLDOUT, holdout, None))
    return reports


def ab_report(rows: Iterable[ABRow]) -> list[VariantReport]:
    counts: dict[str, list[int]] = {}
    for row in rows:
        tally = counts.setdefault(row.variant, [0, 0, 0])
        tally[0] += 1
        tally[1] += row.sent
        tally[2] += row.converted
    return ab_report_from_counts({name: GroupCounts(*tally) for name, tally in counts.items()})
