"""Gamma-Gamma spend model (Fader & Hardie, "The Gamma-Gamma model of monetary value", 2013) and CLV.

Monetary value is the mean value of a customer's repeat transactions, observed over ``frequency``
of them. The model assumes spend is independent of the purchase process, so it is fitted only on
customers with at least one repeat purchase. Formulas follow the ``lifetimes`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from services.scoring.domain.bgnbd import ArrayLike, BgNbdParams, FloatArray, expected_purchases

_INITIAL_LOG_PARAMS = np.full(3, 0.1)  # lifetimes' starting point, see bgnbd


@dataclass(frozen=True)
class GammaGammaParams:
    """Spend per transaction ~ Gamma(p, nu), nu ~ Gamma(q, v) across customers."""

    p: float
    q: float
    v: float


@dataclass(frozen=True)
class GammaGammaFit:
    params: GammaGammaParams
    negative_log_likelihood: float
    converged: bool
    iterations: int
    n_customers: int


class _Likelihood:
    """Mean negative log-likelihood and analytic gradient over log-parameters.

    Per customer ll = gammaln(px + q) - gammaln(px) - gammaln(q) + q log v + (px - 1) log m
    + px log x - (px + q) log(xm + v). The gamma-function terms depend on x alone and are evaluated
    once per distinct x; the log m / log x terms are linear in p and pre-summed; only
    log(xm + v) has to be recomputed per customer at each step.
    """

    def __init__(self, x: FloatArray, m: FloatArray, penalizer: float) -> None:
        w = np.full(x.size, 1.0 / x.size)
        self.x_u, x_idx = np.unique(x, return_inverse=True)
        self.w_x = np.bincount(x_idx, weights=w, minlength=self.x_u.size)
        self.w = w
        self.wx = w * x
        self.xm = x * m
        log_m = np.log(m)
        self.sum_log_m = float(w @ log_m)
        self.sum_x_log_mx = float(self.wx @ (log_m + np.log(x)))
        self.penalizer = penalizer

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        p, q, v = np.exp(log_params)
        pxu = p * self.x_u
        log_xm_v = np.log(self.xm + v)
        inv_xm_v = 1.0 / (self.xm + v)
        wx_lg, w_lg = float(self.wx @ log_xm_v), float(self.w @ log_xm_v)
        ll = (
            self.w_x @ (gammaln(pxu + q) - gammaln(pxu) - gammaln(q) + q * np.log(v))
            + p * self.sum_x_log_mx
            - self.sum_log_m
            - (p * wx_lg + q * w_lg)
        )
        psi_pxq = digamma(pxu + q)
        d_p = self.w_x @ (self.x_u * (psi_pxq - digamma(pxu))) + self.sum_x_log_mx - wx_lg
        d_q = self.w_x @ (psi_pxq - digamma(q) + np.log(v)) - w_lg
        d_v = q / v - (p * float(self.wx @ inv_xm_v) + q * float(self.w @ inv_xm_v))
        params = np.array([p, q, v])
        value = -float(ll) + self.penalizer * float(params @ params)
        grad = -np.array([d_p, d_q, d_v]) * params + 2.0 * self.penalizer * params * params
        return value, grad


def fit_gamma_gamma_detailed(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    penalizer: float = 0.0,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> GammaGammaFit:
    """Maximum-likelihood fit on customers with frequency > 0 (others are ignored, they carry no
    information about spend variation). ``penalizer`` matches lifetimes' ``penalizer_coef``."""
    f = np.asarray(frequency, dtype=np.float64).ravel()
    mv = np.asarray(monetary_value, dtype=np.float64).ravel()
    if f.shape != mv.shape:
        raise ValueError("frequency and monetary_value must have the same shape")
    keep = f > 0
    if np.any(mv[keep] <= 0):
        raise ValueError("monetary_value must be positive for customers with frequency > 0")
    if not np.any(keep):
        raise ValueError("no customer with a repeat purchase to fit on")
    result: Any = minimize(
        _Likelihood(f[keep], mv[keep], penalizer),
        _INITIAL_LOG_PARAMS,
        jac=True,
        method="BFGS",
        options={"gtol": tol, "maxiter": max_iter},
    )
    p, q, v = (float(val) for val in np.exp(result.x))
    converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6
    return GammaGammaFit(
        params=GammaGammaParams(p=p, q=q, v=v),
        negative_log_likelihood=float(result.fun),
        converged=converged,
        iterations=int(result.nit),
        n_customers=int(keep.sum()),
    )


def fit_gamma_gamma(frequency: ArrayLike, monetary_value: ArrayLike, penalizer: float = 0.0) -> GammaGammaParams:
    fit = fit_gamma_gamma_detailed(frequency, monetary_value, penalizer=penalizer)
    if not fit.converged:
        raise RuntimeError(f"Gamma-Gamma fit did not converge after {fit.iterations} iterations")
    return fit.params


def conditional_expected_average_profit(
    params: GammaGammaParams, frequency: ArrayLike, monetary_value: ArrayLike
) -> FloatArray:
    """E[spend per transaction | history]: a credibility-weighted mix of the population mean and the
    customer's own mean, the weight growing with the number of observed transactions. Requires
    q > 1 (finite population mean). For frequency 0 it is the population mean."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    p, q, v = params.p, params.q, params.v
    individual_weight = p * x / (p * x + q - 1.0)
    population_mean = v * p / (q - 1.0)
    return np.asarray((1.0 - individual_weight) * population_mean + individual_weight * m, dtype=np.float64)


class ExpectsPurchases(Protocol):
    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


def customer_lifetime_value(
    bgnbd_params: BgNbdParams | ExpectsPurchases,
    gg_params: GammaGammaParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    time_unit_days: float = 1.0,
    periods_per_month: float | None = None,
) -> FloatArray:
    """Discounted expected spend over the next ``horizon_months`` whole months.

    Same semantics as lifetimes' ``GammaGammaFitter.customer_lifetime_value``: for each month k the
    expected purchases in that month (cumulative expectation at k minus at k-1) times the expected
    spend per purchase, discounted by (1 + rate)^k, summed over k = 1..horizon.

    ``bgnbd_params``: BG/NBD parameters or any purchase model with ``expected_purchases`` (purchase_models).
    A month is ``periods_per_month`` model time units; by default 30 days / ``time_unit_days``
    (lifetimes uses 30 for days but 4.345 for weeks, pass that to reproduce its weekly figures).
    """
    ppm = 30.0 / time_unit_days if periods_per_month is None else periods_per_month
    x = np.asarray(frequency, dtype=np.float64)
    rec = np.asarray(recency, dtype=np.float64)
    age = np.asarray(T, dtype=np.float64)
    spend = conditional_expected_average_profit(gg_params, x, monetary_value)
    months = np.arange(horizon_months + 1, dtype=np.float64)
    # one vectorised evaluation for all month ends instead of 2 * horizon separate calls
    shape = np.broadcast_shapes(x.shape, rec.shape, age.shape)
    expected = (
        partial(expected_purchases, bgnbd_params)
        if isinstance(bgnbd_params, BgNbdParams)
        else bgnbd_params.expected_purchases
    )
    cum = expected(
        (months * ppm).reshape((-1,) + (1,) * len(shape)),
        x[np.newaxis, ...],
        rec[np.newaxis, ...],
        age[np.newaxis, ...],
    )
    cum = np.broadcast_to(cum, (months.size, *shape)).copy()
    cum[0] = 0.0  # the formula already gives 0 at t = 0; pinning it keeps rounding out of month 1
    per_month = np.diff(cum, axis=0)
    discount = (1.0 + discount_rate_monthly) ** months[1:]
    discounted = (per_month / discount.reshape((-1,) + (1,) * len(shape))).sum(axis=0)
    return np.asarray(spend * discounted, dtype=np.float64)
