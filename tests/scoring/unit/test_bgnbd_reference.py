"""BG/NBD against the lifetimes reference implementation on CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter

from services.scoring.domain.bgnbd import (
    BgNbdParams,
    days_until_expected_purchases,
    expected_purchases,
    fit_bgnbd,
    fit_bgnbd_detailed,
    probability_alive,
)


def _columns(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return df["frequency"].to_numpy(float), df["recency"].to_numpy(float), df["T"].to_numpy(float)


def _params_of(bgf: BetaGeoFitter) -> BgNbdParams:
    p = bgf.params_
    return BgNbdParams(r=float(p["r"]), alpha=float(p["alpha"]), a=float(p["a"]), b=float(p["b"]))


def _as_array(p: BgNbdParams) -> np.ndarray:
    return np.array([p.r, p.alpha, p.a, p.b])


@pytest.fixture(scope="module", params=["cdnow_weeks", "cdnow_days"])
def dataset(request: pytest.FixtureRequest) -> pd.DataFrame:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def reference(dataset: pd.DataFrame) -> BetaGeoFitter:
    f, r, t = _columns(dataset)
    return BetaGeoFitter().fit(f, r, t)


@pytest.mark.parametrize("penalizer", [0.0, 0.1])
def test_fit_matches_lifetimes(dataset: pd.DataFrame, penalizer: float) -> None:
    f, r, t = _columns(dataset)
    ours = fit_bgnbd(f, r, t, penalizer=penalizer)
    ref = BetaGeoFitter(penalizer_coef=penalizer).fit(f, r, t)
    np.testing.assert_allclose(_as_array(ours), _as_array(_params_of(ref)), rtol=1e-3)


def test_fit_reaches_at_least_lifetimes_likelihood(dataset: pd.DataFrame, reference: BetaGeoFitter) -> None:
    f, r, t = _columns(dataset)
    fit = fit_bgnbd_detailed(f, r, t)
    assert fit.converged
    assert fit.n_customers == len(dataset)
    assert fit.n_unique_triples < fit.n_customers  # the dedup actually collapses histories
    # lifetimes' objective is the mean negative log-likelihood in rescaled time, as is ours
    assert fit.negative_log_likelihood <= reference._negative_log_likelihood_ + 1e-9


def test_probability_alive_matches_lifetimes(dataset: pd.DataFrame, reference: BetaGeoFitter) -> None:
    f, r, t = _columns(dataset)
    expected = reference.conditional_probability_alive(f, r, t)
    actual = probability_alive(_params_of(reference), f, r, t)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-6)
    assert np.all(actual[f == 0] == 1.0)
    assert np.all((actual > 0) & (actual <= 1))


@pytest.mark.parametrize("horizon", [1.0, 30.0, 90.0, 365.0])
def test_expected_purchases_matches_lifetimes(dataset: pd.DataFrame, reference: BetaGeoFitter, horizon: float) -> None:
    f, r, t = _columns(dataset)
    expected = reference.conditional_expected_number_of_purchases_up_to_time(horizon, f, r, t)
    actual = expected_purchases(_params_of(reference), horizon, f, r, t)
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-6)
    assert np.all(actual >= 0)


def test_expected_purchases_broadcasts_horizons_against_customers(cdnow_days: pd.DataFrame) -> None:
    f, r, t = _columns(cdnow_days.iloc[:50])
    params = BgNbdParams(r=0.27, alpha=41.9, a=0.48, b=2.11)
    grid = expected_purchases(params, np.array([30.0, 90.0])[:, None], f, r, t)
    assert grid.shape == (2, 50)
    np.testing.assert_allclose(grid[1], expected_purchases(params, 90.0, f, r, t))
    assert np.all(grid[1] >= grid[0])


def test_duplicated_customers_give_the_same_fit(cdnow_weeks: pd.DataFrame) -> None:
    f, r, t = _columns(cdnow_weeks)
    once = fit_bgnbd(f, r, t)
    twice = fit_bgnbd(np.tile(f, 3), np.tile(r, 3), np.tile(t, 3))
    np.testing.assert_allclose(_as_array(twice), _as_array(once), rtol=1e-6)


def test_days_until_expected_purchases_is_the_first_day_reaching_threshold(cdnow_days: pd.DataFrame) -> None:
    f, r, t = _columns(cdnow_days.iloc[:300])
    params = BgNbdParams(r=0.27, alpha=41.9, a=0.48, b=2.11)
    days = days_until_expected_purchases(params, f, r, t, threshold=0.5, max_days=365)
    reached = days > 0
    assert reached.any() and (~reached).any()
    at = expected_purchases(params, days[reached].astype(float), f[reached], r[reached], t[reached])
    before = expected_purchases(params, days[reached] - 1.0, f[reached], r[reached], t[reached])
    assert np.all(at >= 0.5)
    assert np.all(before < 0.5)
    never = expected_purchases(params, 365.0, f[~reached], r[~reached], t[~reached])
    assert np.all(never < 0.5)
    # the per-customer path evaluates a grid of days instead of bisecting: same answers
    for i in range(0, 300, 37):
        assert days_until_expected_purchases(params, f[i], r[i], t[i], threshold=0.5, max_days=365)[0] == days[i]


@pytest.mark.parametrize(
    ("f", "r", "t"),
    [([1.0], [5.0], [4.0]), ([0.0], [2.0], [5.0]), ([-1.0], [0.0], [5.0]), ([1.5], [1.0], [5.0]), ([], [], [])],
)
def test_fit_rejects_invalid_histories(f: list[float], r: list[float], t: list[float]) -> None:
    with pytest.raises(ValueError):
        fit_bgnbd(f, r, t)


def test_expected_purchases_stay_finite_when_the_hypergeometric_term_turns_negative() -> None:
    """a + b < 1 with x = 0 makes 2F1 negative for longer horizons (CDNOW's first 400 customers fit
    like this); taking its log, as lifetimes does, gives NaN and a NaN CLV that ranks above everyone."""
    from services.scoring.domain.bgnbd import BgNbdParams, expected_purchases

    params = BgNbdParams(r=0.2961424484282756, alpha=38.80041734018237, a=0.22117989035977056, b=0.7305872918727259)
    horizons = np.arange(0.0, 391.0, 30.0)
    values = expected_purchases(params, horizons, 0.0, 0.0, 545.0)
    assert np.all(np.isfinite(values)) and np.all(np.diff(values) > 0)
    # where lifetimes' formula is still defined the two agree
    assert values[1:5] == pytest.approx([0.01510303, 0.0299867, 0.04466552, 0.05915239], rel=1e-6)
