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

    Per customer ll = A1(x) + A2(x) + A3(x, T) + [x > 0] * softplus(D), with A3 = -(r + x) log(alpha + T)
    and D = A4 - A3 = log a - log(b + x - 1) + (r + x) (log(alpha + T) - log(alpha + t_x)). That is the
    usual logaddexp(A3, A4), rearranged so that everything except the softplus is a sum of terms in
    x alone or in T alone: those are evaluated on distinct x / T values with pre-summed weights, and
    only the softplus (and its sigmoid, for the gradient) runs per distinct triple of a repeat
    buyer. The analytic gradient avoids finite differences and autodiff overhead.
    """

    def __init__(
        self, frequency: FloatArray, recency: FloatArray, T: FloatArray, weights: FloatArray, penalizer: float
    ) -> None:
        w = weights / weights.sum()
        self.x_u, x_idx = np.unique(frequency, return_inverse=True)
        self.T_u, T_idx = np.unique(T, return_inverse=True)
        self.tx_u, tx_idx = np.unique(recency, return_inverse=True)
        self.w_x = np.bincount(x_idx, weights=w, minlength=self.x_u.size)
        self.w_T = np.bincount(T_idx, weights=w, minlength=self.T_u.size)
        self.wx_T = np.bincount(T_idx, weights=w * frequency, minlength=self.T_u.size)
        rep = frequency > 0
        self.r_x = frequency[rep]
        self.r_w = w[rep]
        self.r_xi = x_idx[rep]
        self.r_Ti = T_idx[rep]
        self.r_txi = tx_idx[rep]
        # b + x - 1 is only needed for x > 0; max() keeps the x == 0 entry finite (it gets no weight)
        self.x_u_pos = np.maximum(self.x_u, 1.0)
        self.penalizer = penalizer

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        xu = self.x_u

        a12_u = gammaln(r + xu) - gammaln(r) + r * np.log(alpha)
        a12_u += gammaln(a + b) + gammaln(b + xu) - gammaln(b) - gammaln(a + b + xu)
        log_aT = np.log(alpha + self.T_u)
        log_atx = np.log(alpha + self.tx_u)
        sum_a3 = -(r * self.w_T + self.wx_T) @ log_aT

        bx1 = b + self.x_u_pos - 1.0
        c_u = np.log(a) - np.log(bx1)
        gap = log_aT[self.r_Ti] - log_atx[self.r_txi]  # >= 0 because t_x <= T
        rx = r + self.r_x
        d = c_u[self.r_xi] + rx * gap
        ll = float(self.w_x @ a12_u + sum_a3 + self.r_w @ np.logaddexp(0.0, d))

        ws = self.r_w * expit(d)  # weight times posterior probability of the "dropped out" branch
        wsrx = ws * rx
        n_T, n_tx = self.T_u.size, self.tx_u.size
        inv_aT = 1.0 / (alpha + self.T_u)
        inv_atx = 1.0 / (alpha + self.tx_u)
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + xu)
        d_r = self.w_x @ (digamma(r + xu) - digamma(r) + np.log(alpha)) - self.w_T @ log_aT + float(ws @ gap)
        d_alpha = (
            r / alpha
            - (r * self.w_T + self.wx_T) @ inv_aT
            + np.bincount(self.r_Ti, weights=wsrx, minlength=n_T) @ inv_aT
            - np.bincount(self.r_txi, weights=wsrx, minlength=n_tx) @ inv_atx
        )
        d_a = self.w_x @ (psi_ab - psi_abx) + float(ws.sum()) / a
        d_b = self.w_x @ (psi_ab + digamma(b + xu) - digamma(b) - psi_abx) - np.bincount(
            self.r_xi, weights=ws, minlength=xu.size
        ) @ (1.0 / bx1)

        params = np.array([r, alpha, a, b])
        grad_params = np.array([d_r, d_alpha, d_a, d_b])
        value = -ll + self.penalizer * float(params @ params)
        # chain rule to log-space: d/dlog(theta) = theta * d/dtheta; penalty derivative is 2 theta^2
        grad = -grad_params * params + 2.0 * self.penalizer * params * params
        return value, grad


def _distinct_histories(
    f: FloatArray, rec: FloatArray, age: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Distinct (x, t_x, T) triples with summed weights."""
    whole = np.all(rec == np.floor(rec)) and np.all(age == np.floor(age))
    if whole and (float(f.max()) + 1) * (float(age.max()) + 1) ** 2 < 2.0**62:
        # whole-day inputs: one int64 key per customer sorts ~20x faster than np.unique(axis=0)
        span = np.int64(age.max()) + 1
        key = (f.astype(np.int64) * span + rec.astype(np.int64)) * span + age.astype(np.int64)
        ukey, inverse = np.unique(key, return_inverse=True)
        counts = np.bincount(inverse, weights=w, minlength=ukey.size)
        keep = counts > 0
        ukey, counts = ukey[keep], counts[keep]
        return (
            (ukey // (span * span)).astype(np.float64),
            ((ukey // span) % span).astype(np.float64),
            (ukey % span).astype(np.float64),
            np.asarray(counts, dtype=np.float64),
        )
    uniq, inverse = np.unique(np.stack([f, rec, age], axis=1), axis=0, return_inverse=True)
    summed = np.bincount(inverse.ravel(), weights=w, minlength=uniq.shape[0]).astype(np.float64)
    used = summed > 0
    return uniq[used, 0], uniq[used, 1], uniq[used, 2], summed[used]


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
    uf, urec, uage, counts = _distinct_histories(f, rec, age, w)
    lik = _Likelihood(uf, urec * scale, uage * scale, counts, penalizer)
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
        n_unique_triples=int(uf.size),
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
        log_power = (r + x) * np.log((alpha + age) / (alpha + tt + age))
        # The hypergeometric term is negative when c = a + b + x - 1 < 0 (a + b < 1 and x = 0, as
        # fitted on CDNOW's first 400 customers), so it is multiplied, never taken a log of.
        hyp = hyp2f1(ha, hb, hc, z)
        # Euler's transformation gives the same value where the direct series overflows; its
        # power factor is folded into the exponent so that it cannot overflow either.
        euler = hyp2f1(hc - ha, hc - hb, hc, z) * np.exp((hc - ha - hb) * np.log1p(-z) + log_power)
        term = np.where(np.isfinite(hyp), hyp * np.exp(log_power), euler)
    first = (a + b + x - 1.0) / (a - 1.0)
    second = 1.0 - term
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
