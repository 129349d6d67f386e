"""k-means on the standardised features: k chosen by silhouette finds planted groups; centres described in words."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from services.insights.domain.clusters import describe, fit, silhouette, standardise


def planted(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loyal = np.column_stack(
        [rng.uniform(1, 10, 60), rng.integers(10, 20, 60), rng.uniform(500, 900, 60), rng.uniform(400, 600, 60)]
    )
    lapsed = np.column_stack([rng.uniform(200, 300, 40), np.ones(40), rng.uniform(10, 30, 40), rng.uniform(0, 10, 40)])
    return np.vstack([loyal, lapsed]).astype(float)


def test_silhouette_picks_the_planted_groups_and_names_them_by_spend() -> None:
    result = fit(planted(), k=None, k_range=(2, 6), seed=7)
    assert result.k == 2
    assert result.silhouette is not None and result.silhouette > 0.7
    assert result.labels[:60] == ["cluster-1"] * 60 and result.labels[60:] == ["cluster-2"] * 40
    loyal, lapsed = result.clusters
    assert (loyal.customers, lapsed.customers) == (60, 40)
    assert loyal.description.startswith("recent buyers, buying often, high spend, high expected value")
    assert lapsed.description.startswith("lapsed buyers, rarely buying, low spend, low expected value")
    assert 1 <= loyal.centre["recency_days"] <= 10 and lapsed.centre["frequency"] == pytest.approx(1)


def test_a_given_k_is_kept_and_the_fit_is_repeatable() -> None:
    first = fit(planted(), k=3, k_range=(2, 6), seed=7)
    again = fit(planted(), k=3, k_range=(2, 6), seed=7)
    assert first.k == 3 and first.silhouette is None
    assert first.labels == again.labels
    assert sorted(c.segment for c in first.clusters) == ["cluster-1", "cluster-2", "cluster-3"]


def test_fewer_distinct_customers_than_k_gives_fewer_clusters() -> None:
    same = np.array([[5.0, 2.0, 100.0, 50.0]] * 4)
    result = fit(same, k=None, k_range=(2, 4), seed=7)
    assert result.k == 1 and result.labels == ["cluster-1"] * 4


def test_standardised_features_have_zero_mean_and_unit_spread() -> None:
    x, _, _ = standardise(planted())
    assert np.allclose(x.mean(axis=0), 0) and np.allclose(x.std(axis=0), 1)


def test_silhouette_of_one_cluster_is_undefined() -> None:
    assert silhouette(np.zeros((5, 4)), np.zeros(5, dtype=int), sample=10, seed=1) is None


def test_describe_uses_the_middle_words_near_the_mean() -> None:
    centre = {"recency_days": 30.0, "frequency": 3.0, "monetary": 120.0, "clv": 80.0}
    zero = dict.fromkeys(centre, 0.0)
    assert describe(centre, zero).startswith(
        "neither recent nor lapsed, buying now and then, average spend, average expected value"
    )


def naive_silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """The textbook definition, row by row (a lone member of its cluster scores 0)."""
    distances = cdist(x, x)
    scores = []
    for n in range(len(x)):
        own = labels == labels[n]
        if own.sum() <= 1:
            scores.append(0.0)
            continue
        a = distances[n, own].sum() / (own.sum() - 1)
        b = min(distances[n, labels == other].mean() for other in set(labels.tolist()) if other != labels[n])
        scores.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(scores))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(2, 60), k=st.integers(2, 5))
def test_the_vectorised_silhouette_is_the_textbook_one(seed: int, rows: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).round(1)  # rounded: duplicate rows and zero distances occur
    labels = rng.integers(0, k, rows)
    if len(set(labels.tolist())) < 2:
        labels[0], labels[-1] = 0, 1
    got = silhouette(x, labels, sample=rows, seed=seed)
    assert got == pytest.approx(naive_silhouette(x, labels), abs=1e-9)
