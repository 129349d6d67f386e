"""BG/NBD purchase model (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

Time is unit-agnostic: frequency is the number of repeat purchases, recency the time between the
first and the last purchase, T the time between the first purchase and the clock, all in the same
unit (the scoring service uses days). ``alpha`` comes out in that unit too.

The formulas follow the ``lifetimes`` package (the reference implementation) so results can be
checked against it, but this module never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

# lifetimes starts every log-parameter at 0.1; starting at the same point keeps both optimisers on
# the same basin, which matters for matching its output on awkward data sets.
_INITIAL_LOG_PARAMS = np.full(4, 0.1)
_GRID_LIMIT = 20_000  # customers x days evaluated at once by days_until_expected_purchases


@dataclass(frozen=True)
class BgNbdParams:
    """Population parameters: purchase rate ~ Gamma(r, alpha), dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class BgNbdFit:
    """A fit with the diagnostics needed to decide whether to trust it."""

    params: BgNbdParams
    negative_log_likelihood: float  # mean per customer, penalty included
    converged: bool
    iterations: int
    n_customers: int
    n_unique_triples: int


def _as_float(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _validate(frequency: FloatArray, recency: FloatArray, T: FloatArray) -> None:
    if not (frequency.shape == recency.shape == T.shape):
        raise ValueError("frequency, recency and T must have the same shape")
    if frequency.size == 0:
        raise ValueError("at least one customer is needed to fit")
    if np.any(frequency < 0) or np.any(frequency != np.round(frequency)):
        raise ValueError("frequency must be non-negative whole numbers")
    if np.any(recency < 0) or np.any(recency > T):
        raise ValueError("recency must lie in [0, T]")
    if np.any(recency[frequency == 0] != 0):
        raise ValueError("recency must be 0 when frequency is 0")


class _Likelihood:
    """Mean negative log-likelihood and its analytic gradient over log-parameters.

    The log-likelihood of one customer is A1(x) + A2(x) + logaddexp(A3(x, T), A4(x, t_x)). Only the
    last term needs the full triple, so the gamma functions are evaluated on the distinct x values,
    the logs on the distinct T and t_x values, and only a handful of cheap operations run per
    distinct triple. The analytic gradient avoids finite differences (4 extra passes) and autodiff.
    """

    def __init__(
        self, frequency: FloatArray, recency: FloatArray, T: FloatArray, weights: FloatArray, penalizer: float
    ) -> None:
        self.x_u, self.x_idx = np.unique(frequency, return_inverse=True)
        self.tx_u, self.tx_idx = np.unique(recency, return_inverse=True)
        self.T_u, self.T_idx = np.unique(T, return_inverse=True)
        self.w = weights / weights.sum()
        # per distinct x the summed weight lets x-only terms be computed once per x value
        self.w_x = np.bincount(self.x_idx, weights=self.w, minlength=self.x_u.size)
        self.x = frequency
        self.tx = recency
        self.T = T
        self.has_repeat = self.x > 0
        self.penalizer = penalizer

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        xu = self.x_u
        x = self.x

        a1_u = gammaln(r + xu) - gammaln(r) + r * np.log(alpha)
        a2_u = gammaln(a + b) + gammaln(b + xu) - gammaln(b) - gammaln(a + b + xu)
        log_aT = np.log(alpha + self.T_u)[self.T_idx]
        log_atx = np.log(alpha + self.tx_u)[self.tx_idx]
        rx = r + x
        a3 = -rx * log_aT
        # b + x - 1 would be b - 1 for x == 0; that term is masked out, max() only keeps the log finite
        log_bx1 = np.log(b + np.maximum(x, 1.0) - 1.0)
        a4 = np.where(self.has_repeat, np.log(a) - log_bx1 - rx * log_atx, -np.inf)
        lse = np.logaddexp(a3, a4)
        ll = float(self.w_x @ (a1_u + a2_u) + self.w @ lse)

        # softmax weights of the two branches of the mixture
        p4 = np.exp(a4 - lse)
        p3 = 1.0 - p4

        psi_r_x = digamma(r + xu)
        d_r = self.w_x @ (psi_r_x - digamma(r) + np.log(alpha)) - self.w @ (p3 * log_aT + p4 * log_atx)
        d_alpha = r / alpha - self.w @ (rx * (p3 / (alpha + self.T) + p4 / (alpha + self.tx)))
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + xu)
        d_a = self.w_x @ (psi_ab - psi_abx) + (self.w @ p4) / a
        d_b = self.w_x @ (psi_ab + digamma(b + xu) - digamma(b) - psi_abx) - self.w @ (p4 / np.exp(log_bx1))

        params = np.array([r, alpha, a, b])
        grad_params = np.array([d_r, d_alpha, d_a, d_b])
        value = -ll + self.penalizer * float(params @ params)
        # chain rule to log-space: d/dlog(theta) = theta * d/dtheta; penalty derivative is 2 theta^2
        grad = -grad_params * params + 2.0 * self.penalizer * params * params
        return value, grad


def fit_bgnbd_detailed(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    penalizer: float = 0.0,
    weights: ArrayLike | None = None,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> BgNbdFit:
    """Maximum-likelihood BG/NBD fit, returning diagnostics too.

    Customers are collapsed to distinct (frequency, recency, T) triples with counts so the cost of
    each optimiser step grows with the number of distinct histories, not customers. Integer-day
    inputs therefore fit much faster than continuous times.

    Time is rescaled so the oldest customer has T = 1 before optimising, as lifetimes does: it keeps
    alpha near 1 for the optimiser and makes ``penalizer`` mean the same thing as lifetimes'
    ``penalizer_coef`` (an L2 penalty on the parameters in rescaled time).
    """
    f = _as_float(frequency).ravel()
    rec = _as_float(recency).ravel()
    age = _as_float(T).ravel()
    _validate(f, rec, age)
    w = np.ones_like(f) if weights is None else _as_float(weights).ravel()
    if w.shape != f.shape or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative, one per customer, and not all zero")

    max_T = float(age.max())
    scale = 1.0 / max_T if max_T > 0 else 1.0
    triples = np.stack([f, rec * scale, age * scale], axis=1)
    uniq, inverse = np.unique(triples, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=uniq.shape[0]).astype(np.float64)
    keep = counts > 0
    uniq, counts = uniq[keep], counts[keep]

    lik = _Likelihood(uniq[:, 0], uniq[:, 1], uniq[:, 2], counts, penalizer)
    result: Any = minimize(
        lik,
        _INITIAL_LOG_PARAMS,
        jac=True,
        method="BFGS",
        options={"gtol": tol, "maxiter": max_iter},
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    # a gradient norm at the numerical floor counts as converged even if BFGS gave up on precision
    converged = bool(result.success) or float(np.max(np.abs(result.jac))) < 1e-6
    return BgNbdFit(
        params=BgNbdParams(r=r, alpha=alpha / scale, a=a, b=b),
        negative_log_likelihood=float(result.fun),
        converged=converged,
        iterations=int(result.nit),
        n_customers=int(f.size),
        n_unique_triples=int(uniq.shape[0]),
    )


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, penalizer: float = 0.0) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters; raises if the optimiser did not converge."""
    fit = fit_bgnbd_detailed(frequency, recency, T, penalizer=penalizer)
    if not fit.converged:
        raise RuntimeError(f"BG/NBD fit did not converge after {fit.iterations} iterations")
    return fit.params


def probability_alive(params: BgNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """P(customer has not dropped out | history). Always 1 for x = 0: in BG/NBD dropout only happens
    right after a purchase, so someone who never repurchased cannot have left yet."""
    x = _as_float(frequency)
    rec = _as_float(recency)
    age = _as_float(T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (r + x) * np.log((alpha + age) / (alpha + rec)) + np.log(a / (b + np.maximum(x, 1.0) - 1.0))
    return np.asarray(np.where(x == 0, 1.0, expit(-log_odds_dead)), dtype=np.float64)


def expected_purchases(
    params: BgNbdParams, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> FloatArray:
    """Conditional expected number of purchases in the next ``t`` time units (FHL 2005, eq. 10).

    Undefined at exactly a = 1 (removable singularity), as in lifetimes. All arguments
    broadcast, so one call can evaluate many horizons for one customer or one horizon for many.
    """
    x = _as_float(frequency)
    rec = _as_float(recency)
    age = _as_float(T)
    tt = _as_float(t)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b

    ha = r + x
    hb = b + x
    hc = a + b + x - 1.0
    z = tt / (alpha + age + tt)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(ha, hb, hc, z))
        # Euler's transformation gives the same value where the direct series overflows
        ln_hyp_alt = np.log(hyp2f1(hc - ha, hc - hb, hc, z)) + (hc - ha - hb) * np.log1p(-z)
    ln_hyp = np.where(np.isinf(ln_hyp), ln_hyp_alt, ln_hyp)
    first = (a + b + x - 1.0) / (a - 1.0)
    second = 1.0 - np.exp(ln_hyp + (r + x) * np.log((alpha + age) / (alpha + tt + age)))
    denominator = 1.0 + (x > 0) * (a / (b + x - 1.0)) * ((alpha + age) / (alpha + rec)) ** (r + x)
    return np.asarray(first * second / denominator, dtype=np.float64)


def days_until_expected_purchases(
    params: BgNbdParams,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    threshold: float = 0.5,
    max_days: int = 365,
) -> npt.NDArray[np.int64]:
    """Smallest whole number of time units d in [1, max_days] with expected_purchases(d) >= threshold,
    or -1 where the threshold is not reached within ``max_days``.

    The conditional expectation is increasing in t, so a vectorised bisection needs only
    log2(max_days) model evaluations for any number of customers.
    """
    x = np.atleast_1d(_as_float(frequency))
    rec = np.atleast_1d(_as_float(recency))
    age = np.atleast_1d(_as_float(T))
    x, rec, age = np.broadcast_arrays(x, rec, age)
    if x.size * max_days <= _GRID_LIMIT:
        # few customers (the per-event path): one call over every day beats ~9 bisection calls
        days = np.arange(1, max_days + 1, dtype=np.float64).reshape((-1,) + (1,) * x.ndim)
        hit = expected_purchases(params, days, x, rec, age) >= threshold
        return np.where(hit.any(axis=0), hit.argmax(axis=0) + 1, -1).astype(np.int64)
    reached = expected_purchases(params, float(max_days), x, rec, age) >= threshold
    lo = np.zeros(x.shape, dtype=np.int64)  # invariant: E(lo) < threshold (E(0) = 0)
    hi = np.full(x.shape, max_days, dtype=np.int64)  # invariant (where reached): E(hi) >= threshold
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = expected_purchases(params, mid.astype(np.float64), x, rec, age) >= threshold
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(reached, hi, -1)
