from __future__ import annotations

from collections import Counter

import pytest

from services.campaign.domain.ab import (
    DEFAULT_VARIANT,
    ABRow,
    GroupCounts,
    ab_report,
    ab_report_from_counts,
    assign,
    assign_variant,
)
from services.campaign.domain.definitions import HOLDOUT, CampaignDefinition

VARIANTS = [("a", 3.0), ("b", 1.0)]


def test_assignment_is_deterministic() -> None:
    first = [assign("camp-1", f"c-{i}", VARIANTS, 10) for i in range(200)]
    again = [assign("camp-1", f"c-{i}", VARIANTS, 10) for i in range(200)]
    assert first == again
    # A different campaign shuffles customers independently.
    other = [assign("camp-2", f"c-{i}", VARIANTS, 10) for i in range(200)]
    assert first != other


def test_distribution_roughly_matches_weights_on_10k_ids() -> None:
    counts = Counter(assign("camp-1", f"customer-{i}", VARIANTS, 20) for i in range(10_000))
    # Expected: holdout 20 % = 2000; of the remaining 8000, a gets 3/4 = 6000 and b 1/4 = 2000.
    # Binomial SD is at most sqrt(10000 * 0.6 * 0.4) ~ 49, so +-250 is over 5 SD.
    assert abs(counts[HOLDOUT] - 2000) < 250
    assert abs(counts["a"] - 6000) < 250
    assert abs(counts["b"] - 2000) < 250
    assert sum(counts.values()) == 10_000


def test_no_variants_and_no_holdout() -> None:
    assert {assign("camp", f"c-{i}", [], 0) for i in range(100)} == {DEFAULT_VARIANT}
    assert HOLDOUT not in {assign("camp", f"c-{i}", VARIANTS, 0) for i in range(1000)}


def test_assign_variant_uses_the_definition() -> None:
    campaign = CampaignDefinition.model_validate(
        {
            "name": "c",
            "trigger": {"kind": "birthday"},
            "actions": [{"type": "alert", "message": "x"}],
            "variants": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1}],
            "holdout_percent": 10,
        }
    )
    for i in range(50):
        assert assign_variant("camp-1", f"c-{i}", campaign) == assign("camp-1", f"c-{i}", VARIANTS, 10)


def test_report_arithmetic_on_a_hand_computed_example() -> None:
    # holdout: 50/1000 = 0.05; variant: 80/1000 = 0.08; uplift = 0.03.
    # Pooled p = 130/2000 = 0.065; SE0 = sqrt(0.065 * 0.935 * (1/1000 + 1/1000))
    #   = sqrt(0.00012155) = 0.0110250; z = 0.03 / 0.0110250 = 2.7211;
    #   p = 2 * (1 - Phi(2.7211)) = 2 * 0.0032533 = 0.0065066.
    # Unpooled SE = sqrt(0.05*0.95/1000 + 0.08*0.92/1000) = sqrt(0.0001211) = 0.0110045;
    #   CI = 0.03 +- 1.959964 * 0.0110045 = 0.03 +- 0.0215685 = [0.0084315, 0.0515685].
    holdout, variant = ab_report_from_counts({HOLDOUT: GroupCounts(1000, 0, 50), "v": GroupCounts(1000, 990, 80)})
    assert holdout.variant == HOLDOUT
    assert holdout.conversion_rate == pytest.approx(0.05)
    assert holdout.uplift is None
    assert holdout.p_value is None
    assert (variant.variant, variant.audience, variant.sent, variant.converted) == ("v", 1000, 990, 80)
    assert variant.conversion_rate == pytest.approx(0.08)
    assert variant.uplift == pytest.approx(0.03)
    assert variant.z == pytest.approx(2.7211, abs=1e-4)
    assert variant.p_value == pytest.approx(0.0065066, abs=1e-6)
    assert variant.ci_low == pytest.approx(0.0084315, abs=1e-6)
    assert variant.ci_high == pytest.approx(0.0515685, abs=1e-6)


def test_report_from_rows_counts_per_variant() -> None:
    rows = (
        [ABRow(HOLDOUT, sent=False, converted=True)] * 5
        + [ABRow(HOLDOUT, sent=False, converted=False)] * 95
        + [ABRow("a", sent=True, converted=True)] * 10
        + [ABRow("a", sent=True, converted=False)] * 80
        + [ABRow("a", sent=False, converted=False)] * 10
    )
    holdout, a = ab_report(rows)
    assert (holdout.audience, holdout.sent, holdout.converted) == (100, 0, 5)
    assert (a.audience, a.sent, a.converted) == (100, 90, 10)
    assert a.uplift == pytest.approx(0.05)
    assert a.p_value is not None
    assert 0 < a.p_value < 1


def test_empty_groups_give_none_fields() -> None:
    (variant,) = ab_report_from_counts({"a": GroupCounts(100, 100, 7)})
    assert variant.conversion_rate == pytest.approx(0.07)
    assert (variant.uplift, variant.ci_low, variant.ci_high, variant.z, variant.p_value) == (None,) * 5

    holdout, empty = ab_report_from_counts({HOLDOUT: GroupCounts(0, 0, 0), "a": GroupCounts(0, 0, 0)})
    assert holdout.conversion_rate is None
    assert empty.conversion_rate is None
    assert empty.uplift is None

    assert ab_report([]) == []


def test_identical_all_or_nothing_groups_have_no_p_value() -> None:
    _, variant = ab_report_from_counts({HOLDOUT: GroupCounts(50, 0, 0), "a": GroupCounts(50, 50, 0)})
    assert variant.uplift == 0
    assert variant.z is None
    assert variant.p_value is None
