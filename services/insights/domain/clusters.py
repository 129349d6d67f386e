"""Behavioural clusters: k-means on standardised log-recency, log-frequency, log-monetary value and CLV, with k given
or chosen by silhouette, and each centre described in plain terms (pure: arrays in, clusters out)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.vq import kmeans2
from scipy.spatial.distance import cdist

FEATURES = ("recency_days", "frequency", "monetary", "clv")
# Recency, frequency and monetary value are skewed: clustered on log(1 + x); CLV as it is.
_LOGGED = np.array([True, True, True, False])
SEGMENT_PREFIX = "cluster-"

Matrix = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Cluster:
    segment: str
    customers: int
    centre: dict[str, float]  # in the features' own units (days, purchase days, money, money)
    z: dict[str, float]  # the centre in standard deviations from the mean of all customers
    description: str


@dataclass(frozen=True, slots=True)
class Fit:
    k: int
    silhouette: float | None
    clusters: list[Cluster]
    labels: list[str]  # the segment of each input row


def standardise(raw: Matrix) -> tuple[Matrix, Matrix, Matrix]:
    """(standardised rows, mean, std) of the transformed features; a constant feature keeps std 1."""
    x = np.where(_LOGGED, np.log1p(np.maximum(raw, 0.0)), raw)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (x - mean) / std, mean, std


def silhouette(x: Matrix, labels: NDArray[np.int_], *, sample: int, seed: int) -> float | None:
    """Mean silhouette over a sample of rows (all of them when fewer); None with fewer than two clusters.

    Distances from each sampled row to every cluster of the sample are summed in one matrix product, so the cost is
    the sample's distance matrix, not a Python loop per row and cluster.
    """
    if len(set(labels.tolist())) < 2:
        return None
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    xs, ls = x[rows], labels[rows]
    present, column = np.unique(ls, return_inverse=True)
    if len(present) < 2:
        return 0.0  # the sample holds one cluster: every row of it is a lone cluster's, silhouette 0
    members = np.zeros((len(xs), len(present)))
    members[np.arange(len(xs)), column] = 1.0
    sums = cdist(xs, xs) @ members  # row n, cluster c: sum of distances from n to the members of c
    sizes = members.sum(axis=0)
    own_size = sizes[column]
    a = sums[np.arange(len(xs)), column] / np.maximum(own_size - 1, 1)
    others = sums / sizes
    others[np.arange(len(xs)), column] = np.inf
    b = others.min(axis=1)
    scale = np.maximum(a, b)
    scores = np.where((own_size > 1) & (scale > 0), (b - a) / np.where(scale > 0, scale, 1.0), 0.0)
    return float(scores.mean())


def fit(raw: Matrix, *, k: int | None, k_range: tuple[int, int], seed: int, sample: int = 2000) -> Fit:
    """Clusters of the rows of `raw` (columns: FEATURES). Segments are numbered by the centre's monetary value, most
    first, so the same behaviour keeps its name from one refit to the next as long as the order holds."""
    x, mean, std = standardise(raw)
    distinct = len(np.unique(x, axis=0))
    candidates = [k] if k is not None else list(range(k_range[0], k_range[1] + 1))
    candidates = [c for c in candidates if 1 <= c <= distinct] or [1]
    best: tuple[float, int, Matrix, NDArray[np.int_]] | None = None
    for c in candidates:
        centres, labels = kmeans2(x, c, minit="++", seed=np.random.default_rng(seed), missing="raise")
        quality = silhouette(x, labels, sample=sample, seed=seed) if len(candidates) > 1 else None
        score = quality if quality is not None else -1.0
        if best is None or score > best[0]:
            best = (score, c, centres, labels)
    assert best is not None
    score, chosen, centres, labels = best
    used = sorted(set(labels.tolist()), key=lambda n: (-centres[n][2], n))
    names = {n: f"{SEGMENT_PREFIX}{rank + 1}" for rank, n in enumerate(used)}
    clusters = []
    for n in used:
        z = centres[n]
        transformed = z * std + mean
        centre = transformed.copy()
        centre[_LOGGED] = np.expm1(transformed[_LOGGED])
        clusters.append(
            Cluster(
                segment=names[n],
                customers=int((labels == n).sum()),
                centre={f: float(v) for f, v in zip(FEATURES, centre, strict=True)},
                z={f: float(v) for f, v in zip(FEATURES, z, strict=True)},
                description=describe(
                    {f: float(v) for f, v in zip(FEATURES, centre, strict=True)},
                    {f: float(v) for f, v in zip(FEATURES, z, strict=True)},
                ),
            )
        )
    return Fit(chosen, score if len(candidates) > 1 else None, clusters, [names[int(n)] for n in labels])


def _level(z: float, low: str, middle: str, high: str) -> str:
    return high if z >= 0.5 else low if z <= -0.5 else middle


def describe(centre: dict[str, float], z: dict[str, float]) -> str:
    """The centre in words a retention manager reads: how recent, how often, how much, how valuable."""
    words = [
        _level(z["recency_days"], "recent buyers", "neither recent nor lapsed", "lapsed buyers"),
        _level(z["frequency"], "rarely buying", "buying now and then", "buying often"),
        _level(z["monetary"], "low spend", "average spend", "high spend"),
        _level(z["clv"], "low expected value", "average expected value", "high expected value"),
    ]
    figures = (
        f"last purchase about {centre['recency_days']:.0f} days ago, {centre['frequency']:.1f} purchase days, "
        f"{centre['monetary']:.2f} spent, CLV {centre['clv']:.2f}"
    )
    return f"{', '.join(words)} ({figures})"
