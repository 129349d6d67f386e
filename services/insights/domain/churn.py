"""The churned-customers report: which attributes are over-represented among the customers who became churned
against the active base (pure: counts in, lifts out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The attributes compared, in the order the report lists them (the adapter buckets each customer into one value).
TRAITS = (
    "favourite_category",
    "region",
    "channel",
    "tier",
    "complaints",
    "nps_band",
    "coupon_use",
    "days_since_last_login",
)

# Customers counted as the base a churned customer is compared with: those not churned at the end of the period.
BASE_STAGES = ("new", "active", "at_risk", "reactivated")


@dataclass(frozen=True, slots=True)
class TraitValue:
    trait: str
    value: str
    churned: int
    base: int
    churned_share: float
    base_share: float
    # churned_share / base_share; None when the value is absent from the base (nothing to compare with).
    lift: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "trait": self.trait,
            "value": self.value,
            "churned": self.churned,
            "base": self.base,
            "churned_share": self.churned_share,
            "base_share": self.base_share,
            "lift": self.lift,
        }


def lifts(
    churned: Mapping[tuple[str, str], int], base: Mapping[tuple[str, str], int], churned_total: int, base_total: int
) -> list[TraitValue]:
    """Every (trait, value) seen among the churned, by trait then highest lift first.

    Share = customers with the value / all customers of the group (each customer has one value per trait, "unknown"
    included, so the shares of a trait add up to one).
    """
    rows = []
    for (trait, value), count in churned.items():
        if count <= 0 or churned_total <= 0:
            continue
        in_base = base.get((trait, value), 0)
        churned_share = count / churned_total
        base_share = in_base / base_total if base_total > 0 else 0.0
        rows.append(
            TraitValue(
                trait, value, count, in_base, churned_share, base_share, churned_share / base_share if in_base else None
            )
        )
    order = {trait: n for n, trait in enumerate(TRAITS)}
    return sorted(rows, key=lambda r: (order.get(r.trait, len(order)), -(r.lift or float("inf")), r.value))


def over_represented(rows: list[TraitValue], *, min_lift: float, min_churned: int) -> list[TraitValue]:
    """The values whose lift is at least `min_lift` among at least `min_churned` churned customers, strongest
    first (values absent from the base come first: every such customer churned)."""
    chosen = [r for r in rows if r.churned >= min_churned and (r.lift is None or r.lift >= min_lift)]
    return sorted(chosen, key=lambda r: (-(r.lift if r.lift is not None else float("inf")), -r.churned, r.trait))
