"""Gamma-Gamma and CLV against lifetimes on CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter

from services.scoring.domain.bgnbd import BgNbdParams
from services.scoring.domain.gamma_gamma import (
    GammaGammaParams,
    conditional_expected_average_profit,
    customer_lifetime_value,
    fit_gamma_gamma,
)


def _repeat_buyers(df: pd.DataFrame) -> pd.DataFrame:
    # CDNOW has a few zero-dollar orders; lifetimes refuses non-positive monetary values
    return df[(df["frequency"] > 0) & (df["monetary_value"] > 0)]


def _gg_array(p: GammaGammaParams) -> np.ndarray:
    return np.array([p.p, p.q, p.v])


def _gg_of(ggf: GammaGammaFitter) -> GammaGammaParams:
    return GammaGammaParams(p=float(ggf.params_["p"]), q=float(ggf.params_["q"]), v=float(ggf.params_["v"]))


def _bg_of(bgf: BetaGeoFitter) -> BgNbdParams:
    p = bgf.params_
    return BgNbdParams(r=float(p["r"]), alpha=float(p["alpha"]), a=float(p["a"]), b=float(p["b"]))


@pytest.mark.parametrize("name", ["cdnow_weeks", "cdnow_days"])
@pytest.mark.parametrize("penalizer", [0.0, 0.01])
def test_fit_matches_lifetimes(request: pytest.FixtureRequest, name: str, penalizer: float) -> None:
    df = _repeat_buyers(request.getfixturevalue(name))
    ours = fit_gamma_gamma(df["frequency"], df["monetary_value"], penalizer=penalizer)
    ref = GammaGammaFitter(penalizer_coef=penalizer).fit(df["frequency"], df["monetary_value"])
    np.testing.assert_allclose(_gg_array(ours), _gg_array(_gg_of(ref)), rtol=1e-3)


def test_fit_ignores_customers_without_repeat_purchases(cdnow_weeks: pd.DataFrame) -> None:
    all_rows = fit_gamma_gamma(cdnow_weeks["frequency"], cdnow_weeks["monetary_value"])
    repeat = _repeat_buyers(cdnow_weeks)
    only_repeat = fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"])
    np.testing.assert_allclose(_gg_array(all_rows), _gg_array(only_repeat), rtol=1e-9)


def test_conditional_expected_average_profit_matches_lifetimes(cdnow_weeks: pd.DataFrame) -> None:
    repeat = _repeat_buyers(cdnow_weeks)
    ref = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    f, m = cdnow_weeks["frequency"], cdnow_weeks["monetary_value"]
    expected = ref.conditional_expected_average_profit(f, m).to_numpy()
    actual = conditional_expected_average_profit(_gg_of(ref), f.to_numpy(), m.to_numpy())
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
    # no purchase history: the population mean p v / (q - 1)
    p = _gg_of(ref)
    assert actual[(f == 0).to_numpy()][0] == pytest.approx(p.v * p.p / (p.q - 1))


@pytest.mark.parametrize(
    ("name", "freq", "kwargs"),
    [
        ("cdnow_weeks", "W", {"periods_per_month": 4.345}),
        ("cdnow_days", "D", {"time_unit_days": 1.0}),
    ],
)
def test_clv_matches_lifetimes(request: pytest.FixtureRequest, name: str, freq: str, kwargs: dict[str, float]) -> None:
    df = request.getfixturevalue(name)
    f, r, t, m = df["frequency"], df["recency"], df["T"], df["monetary_value"]
    bgf = BetaGeoFitter().fit(f, r, t)
    repeat = _repeat_buyers(df)
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    expected = ggf.customer_lifetime_value(bgf, f, r, t, m, time=12, discount_rate=0.01, freq=freq).to_numpy()
    actual = customer_lifetime_value(_bg_of(bgf), _gg_of(ggf), f, r, t, m, 12, 0.01, **kwargs)
    np.testing.assert_allclose(actual, expected, rtol=1e-8, atol=1e-8)
    assert np.all(actual > 0)


def test_clv_with_our_own_fits_is_close_to_lifetimes(cdnow_days: pd.DataFrame) -> None:
    from services.scoring.domain.bgnbd import fit_bgnbd

    df = cdnow_days
    f, r, t, m = (df[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value"))
    repeat = _repeat_buyers(df)
    bgf = BetaGeoFitter().fit(f, r, t)
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    expected = ggf.customer_lifetime_value(
        bgf, df["frequency"], df["recency"], df["T"], df["monetary_value"]
    ).to_numpy()
    ours = customer_lifetime_value(
        fit_bgnbd(f, r, t), fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"]), f, r, t, m
    )
    np.testing.assert_allclose(ours, expected, rtol=5e-3)


def test_clv_shrinks_with_discounting_and_vanishes_with_zero_horizon() -> None:
    bg = BgNbdParams(r=0.27, alpha=41.9, a=0.48, b=2.11)
    gg = GammaGammaParams(p=6.25, q=3.74, v=15.4)
    args = (np.array([3.0]), np.array([200.0]), np.array([400.0]), np.array([30.0]))
    undiscounted = customer_lifetime_value(bg, gg, *args, horizon_months=12, discount_rate_monthly=0.0)
    discounted = customer_lifetime_value(bg, gg, *args, horizon_months=12, discount_rate_monthly=0.05)
    assert 0 < discounted[0] < undiscounted[0]
    assert customer_lifetime_value(bg, gg, *args, horizon_months=0)[0] == 0.0
    longer = customer_lifetime_value(bg, gg, *args, horizon_months=24, discount_rate_monthly=0.0)
    assert longer[0] > undiscounted[0]
