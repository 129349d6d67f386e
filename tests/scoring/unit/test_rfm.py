from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.scoring.domain.rfm import (
    RfmEdges,
    Tier,
    TierConfig,
    assign_tier,
    quintile_edges,
    quintile_score,
    quintile_scores,
    rank_reference,
    rfm_values,
    score_rfm,
)

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def test_rfm_values_as_of_clock() -> None:
    v = rfm_values(NOW, NOW - timedelta(days=12, hours=12), 4, 210.0)
    assert v.recency_days == pytest.approx(12.5)
    assert (v.frequency, v.monetary) == (4, 210.0)


def test_rfm_values_for_never_buyer_and_future_purchase() -> None:
    assert rfm_values(NOW, None, 0, 0.0).recency_days is None
    assert rfm_values(NOW, NOW + timedelta(hours=3), 1, 5.0).recency_days == 0.0


def test_quintiles_of_distinct_values_split_evenly() -> None:
    values = np.arange(1.0, 101.0)
    edges = quintile_edges(values)
    scores = quintile_scores(values, edges)
    assert np.array_equal(np.bincount(scores, minlength=6)[1:], [20, 20, 20, 20, 20])
    assert scores[0] == 1 and scores[-1] == 5
    # recency: lower is better, so the smallest value gets 5
    rec = quintile_scores(values, edges, higher_is_better=False)
    assert rec[0] == 5 and rec[-1] == 1
    assert np.array_equal(np.bincount(rec, minlength=6)[1:], [20, 20, 20, 20, 20])


def test_ties_get_one_score_whatever_the_order() -> None:
    rng = np.random.default_rng(7)
    values = np.array([1.0] * 60 + [2.0] * 20 + [3.0] * 10 + [8.0] * 10)
    edges = quintile_edges(values)
    scores = quintile_scores(values, edges)
    shuffled = rng.permutation(values)
    shuffled_scores = quintile_scores(shuffled, edges)
    for v in np.unique(values):
        assert len(set(scores[values == v])) == 1
        assert set(shuffled_scores[shuffled == v]) == set(scores[values == v])
    # ordering is monotone: more purchases never scores lower
    assert list(quintile_scores(np.array([1.0, 2.0, 3.0, 8.0]), edges)) == sorted(
        quintile_scores(np.array([1.0, 2.0, 3.0, 8.0]), edges)
    )
    assert quintile_scores(1.0, edges) == 1


def test_score_rfm_uses_edges_and_never_buyer_scores_111() -> None:
    edges = RfmEdges(recency=(10, 30, 60, 120), frequency=(1, 2, 3, 5), monetary=(50, 100, 200, 400))
    s = score_rfm(rfm_values(NOW, NOW - timedelta(days=5), 6, 450.0), edges)
    assert (s.r, s.f, s.m) == (5, 5, 5)
    assert s.composite == 15 and s.code == "555"
    s = score_rfm(rfm_values(NOW, NOW - timedelta(days=200), 1, 20.0), edges)
    assert (s.r, s.f, s.m) == (1, 1, 1)
    s = score_rfm(rfm_values(NOW, NOW - timedelta(days=45), 3, 150.0), edges)
    # 45 days is above two recency edges -> 3; 3 purchases equals an edge -> the lower score 3
    assert (s.r, s.f, s.m) == (3, 3, 3)
    none = score_rfm(rfm_values(NOW, None, 0, 0.0), edges)
    assert none.code == "111"


def test_percentile_rank_is_mid_rank_and_handles_ties() -> None:
    ref = rank_reference([1.0, 2.0, 2.0, 3.0])
    assert ref.percentile_rank(0.0) == 0.0
    assert ref.percentile_rank(2.0) == pytest.approx(0.5)
    assert ref.percentile_rank(3.0) == pytest.approx(0.875)
    assert ref.percentile_rank(10.0) == 1.0


def test_rank_reference_summarises_big_bases_accurately() -> None:
    values = np.random.default_rng(1).lognormal(3.0, 1.0, 200_000)
    ref = rank_reference(values, max_points=1001)
    assert ref.sorted_values.size == 1001
    probe = np.quantile(values, [0.1, 0.5, 0.8, 0.99])
    np.testing.assert_allclose(ref.percentile_rank(probe), [0.1, 0.5, 0.8, 0.99], atol=2e-3)


@pytest.mark.parametrize(
    ("rank", "tier"),
    [(0.0, Tier.LOW), (0.49, Tier.LOW), (0.5, Tier.MEDIUM), (0.79, Tier.MEDIUM), (0.8, Tier.HIGH), (1.0, Tier.HIGH)],
)
def test_tier_cut_without_history(rank: float, tier: Tier) -> None:
    assert assign_tier(rank, None) is tier


def test_tier_cut_is_configurable() -> None:
    cfg = TierConfig(high_share=0.1, medium_share=0.2, hysteresis=0.0)
    assert assign_tier(0.89, None, cfg) is Tier.MEDIUM
    assert assign_tier(0.9, None, cfg) is Tier.HIGH
    assert assign_tier(0.69, None, cfg) is Tier.LOW


def test_hysteresis_keeps_boundary_customers_in_their_tier() -> None:
    # rank wobbling 1.5 points around the 80 % boundary must not flap
    ranks = [0.81, 0.795, 0.805, 0.785, 0.815, 0.79, 0.8]
    tier = assign_tier(ranks[0], None)
    history = [tier]
    for rank in ranks[1:]:
        tier = assign_tier(rank, tier)
        history.append(tier)
    assert history == [Tier.HIGH] * len(ranks)

    tier = Tier.MEDIUM
    for rank in [0.81, 0.815, 0.819, 0.8]:
        tier = assign_tier(rank, tier)
        assert tier is Tier.MEDIUM


def test_hysteresis_lets_clear_moves_through() -> None:
    assert assign_tier(0.779, Tier.HIGH) is Tier.MEDIUM  # 2.1 points below the boundary
    assert assign_tier(0.78, Tier.HIGH) is Tier.HIGH  # exactly at the margin stays
    assert assign_tier(0.82, Tier.MEDIUM) is Tier.HIGH
    assert assign_tier(0.52, Tier.LOW) is Tier.MEDIUM
    assert assign_tier(0.515, Tier.LOW) is Tier.LOW
    assert assign_tier(0.479, Tier.MEDIUM) is Tier.LOW
    assert assign_tier(0.485, Tier.MEDIUM) is Tier.MEDIUM
    # big jumps cross both boundaries at once
    assert assign_tier(0.95, Tier.LOW) is Tier.HIGH
    assert assign_tier(0.10, Tier.HIGH) is Tier.LOW
    assert assign_tier(0.49, Tier.HIGH) is Tier.MEDIUM  # high keeps the lowered medium cut too


def test_tier_config_validation() -> None:
    with pytest.raises(ValueError):
        TierConfig(high_share=0.8, medium_share=0.3)
    with pytest.raises(ValueError):
        TierConfig(hysteresis=0.6)


_values = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, 1.0, 2.5, 10.0])


@settings(max_examples=400, deadline=None)
@given(
    edges=st.lists(st.floats(-1e6, 1e6) | st.sampled_from([0.0, 1.0, 2.5, 10.0]), min_size=4, max_size=4),
    value=_values,
    higher_is_better=st.booleans(),
)
def test_one_value_scores_as_the_array_path_does(edges: list[float], value: float, higher_is_better: bool) -> None:
    """Edges on the value, ties among edges, NaN and infinities included: the scalar path is the numpy one."""
    ordered = tuple(sorted(edges))
    assert len(ordered) == 4
    expected = int(quintile_scores(value, ordered, higher_is_better))
    assert quintile_score(value, ordered, higher_is_better) == expected
