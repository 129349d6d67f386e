"""The purchase models scoring chooses between: BG/NBD, MBG/NBD and Pareto/NBD.

All three describe a customer by (frequency, recency, T) — repeat purchase days, days from the first to the last
purchase day, days from the first purchase day to the clock — and give the probability that the customer is
still alive and the expected number of repeat purchases in the next t days. They are fitted on one shared base:
the distinct (frequency, recency, T) triples with their counts (``Histories``), in time rescaled so that the
oldest customer has T = 1, starting where the reference implementation (``lifetimes``) starts, so that the
maximum found is the same one.

- BG/NBD (Fader, Hardie & Lee 2005): a customer may drop out right after each repeat purchase.
- MBG/NBD (Batislam, Denizel & Filiztekin 2007): may also drop out right after the first purchase, so a customer
  who never came back is not certain to be alive.
- Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie's 2005 note for the likelihood): drop-out at any
  moment, exponentially distributed.

Time is in days throughout (``TIME_UNIT``); the rates (``alpha``, ``beta``) are in the same unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, hyp2f1

from services.scoring.domain.bgnbd import (
    _GRID_LIMIT,
    ArrayLike,
    BgNbdParams,
    FloatArray,
    _distinct_histories,
    _validate,
    fit_bgnbd_detailed,
)
from services.scoring.domain.bgnbd import expected_purchases as bgnbd_expected_purchases
from services.scoring.domain.bgnbd import probability_alive as bgnbd_probability_alive

TIME_UNIT = "day"
BG_NBD = "bg_nbd"
MBG_NBD = "mbg_nbd"
PARETO_NBD = "pareto_nbd"
MODEL_NAMES = (BG_NBD, MBG_NBD, PARETO_NBD)
_INITIAL_LOG_PARAMS = np.full(4, 0.1)
# Pareto/NBD's reference starts near 1 in every parameter (randomly); a fixed start there is reproducible.
_PARETO_INITIAL_LOG_PARAMS = np.zeros(4)
# Where s and beta grow together the likelihood tends to a limit (drop-out exponential at rate s / beta) that no
# finite point attains: the optimiser would walk that ridge for ever. Parameters in time rescaled to the oldest
# customer's T stay within exp(+-14) (about 1.2e6), past any meaningful value.
_PARETO_LOG_BOUND = 14.0


class PurchaseModel(Protocol):
    """What scoring needs of a fitted purchase model."""

    @property
    def name(self) -> str: ...

    def params(self) -> dict[str, float]: ...

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray: ...

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


def _f(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


# -- the three models -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbd:
    p: BgNbdParams
    name: str = BG_NBD

    def params(self) -> dict[str, float]:
        return asdict(self.p)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        return bgnbd_probability_alive(self.p, frequency, recency, T)

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        return bgnbd_expected_purchases(self.p, t, frequency, recency, T)


@dataclass(frozen=True)
class MbgNbdParams:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class MbgNbd:
    p: MbgNbdParams
    name: str = MBG_NBD

    def params(self) -> dict[str, float]:
        return asdict(self.p)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        x, rec, age = _f(frequency), _f(recency), _f(T)
        r, alpha, a, b = self.p.r, self.p.alpha, self.p.a, self.p.b
        log_odds_dead = np.log(a / (b + x)) + (r + x) * np.log((alpha + age) / (alpha + rec))
        return np.asarray(expit(-log_odds_dead), dtype=np.float64)

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Conditional expectation of repeat purchases in the next ``t`` days (Batislam et al., eq. 6)."""
        x, rec, age, tt = _f(frequency), _f(recency), _f(T), _f(t)
        r, alpha, a, b = self.p.r, self.p.alpha, self.p.a, self.p.b
        ha, hb, hc = r + x, b + x + 1.0, a + b + x
        z = tt / (alpha + age + tt)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_power = (r + x) * np.log((alpha + age) / (alpha + age + tt))
            hyp = hyp2f1(ha, hb, hc, z)
            # Euler's transformation where the direct series overflows (as in bgnbd.expected_purchases)
            euler = hyp2f1(hc - ha, hc - hb, hc, z) * np.exp((hc - ha - hb) * np.log1p(-z) + log_power)
            term = np.where(np.isfinite(hyp), hyp * np.exp(log_power), euler)
        numerator = (a + b + x) / (a - 1.0) * (1.0 - term)
        denominator = 1.0 + (a / (b + x)) * ((alpha + age) / (alpha + rec)) ** (r + x)
        return np.asarray(numerator / denominator, dtype=np.float64)


@dataclass(frozen=True)
class ParetoNbdParams:
    r: float
    alpha: float
    s: float
    beta: float


def _log_a0_term(k: FloatArray, second: float | FloatArray, big_t: FloatArray, gap: float) -> FloatArray:
    """log(2F1(k, second; k + 1; z) / big_t^k) with z = gap / big_t; NaN where ``_log_dropout`` must stand in.

    The direct series is the fast one; where it overflows (a large s or r + x with z near 1, where the optimiser's
    line search goes) Euler's transformation 2F1(k, b; k + 1; z) = (1 - z)^(1 - b) 2F1(1, k + 1 - b; k + 1; z) has a
    series of positive terms shrinking geometrically, the power taken in logarithms. Past ``_LARGE_K`` scipy's
    evaluation gets slow (tens of microseconds) and fails in corners near z = 1 (NaN): the integral is the better
    way there."""
    k, second_b, big_t = np.broadcast_arrays(
        np.asarray(k, dtype=np.float64), np.asarray(second, dtype=np.float64), big_t
    )
    z = gap / big_t
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        small = k <= _LARGE_K
        every = bool(small.all())
        ks, bs, zs = (k, second_b, z) if every else (k[small], second_b[small], z[small])
        part = np.log(hyp2f1(ks, bs, ks + 1.0, zs))
        overflowed = ~np.isfinite(part)
        if overflowed.any():
            kb, bb, zb = ks[overflowed], bs[overflowed], zs[overflowed]
            part[overflowed] = (1.0 - bb) * np.log1p(-zb) + np.log(hyp2f1(1.0, kb + 1.0 - bb, kb + 1.0, zb))
        if every:
            log_hyp = part
        else:
            log_hyp = np.full(k.shape, np.nan)
            log_hyp[small] = part
        return np.asarray(log_hyp - k * np.log(big_t), dtype=np.float64)


_LARGE_K = 100.0
_NODES, _NODE_WEIGHTS = np.polynomial.legendre.leggauss(128)


def _log_dropout(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, rec: FloatArray, age: FloatArray
) -> FloatArray:
    """log(s / (r + s + x) A0) as the integral it is, over the drop-out time tau in [recency, T]:
    integral of s (beta + tau)^-(s + 1) (alpha + tau)^-(r + x) dtau, by Gauss-Legendre in u = log(c + tau),
    c = min(alpha, beta), where both factors are at most exponential. For the histories the hypergeometric form
    leaves without a value."""
    c = min(alpha, beta)
    lo, hi = np.log(c + rec), np.log(c + age)
    half = (hi - lo)[:, None] / 2.0
    u = lo[:, None] + half * (_NODES[None, :] + 1.0)
    tau = np.exp(u) - c
    with np.errstate(divide="ignore"):
        log_f = np.log(s) - (s + 1.0) * np.log(beta + tau) - (r + x)[:, None] * np.log(alpha + tau) + u
        log_f += np.log(_NODE_WEIGHTS)[None, :] + np.log(half)
    top = log_f.max(axis=1)
    with np.errstate(invalid="ignore"):
        return np.asarray(top + np.log(np.exp(log_f - top[:, None]).sum(axis=1)), dtype=np.float64)


def _patched(
    log_terms: FloatArray,
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: FloatArray,
    rec: FloatArray,
    age: FloatArray,
) -> FloatArray:
    """``log_terms`` (log(s / (r + s + x)) + log A0 per history) with its missing values integrated."""
    if np.all(np.isfinite(log_terms) | np.asarray(rec >= age)):
        return log_terms
    terms, xs, recs, ages = (
        np.array(v, dtype=np.float64, ndmin=1) for v in np.broadcast_arrays(log_terms, x, rec, age)
    )
    missing = ~np.isfinite(terms) & (recs < ages)
    terms[missing] = _log_dropout(r, alpha, s, beta, xs[missing], recs[missing], ages[missing])
    return terms.reshape(np.shape(log_terms))


def _log_difference(u: FloatArray, v: FloatArray) -> FloatArray:
    """log(exp(u) - exp(v)) for u >= v: recency <= T makes the first term the larger one; a rounding excess of v is
    the equality it stands for (-inf, a zero difference), never a NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(u + np.log1p(-np.exp(np.minimum(v - u, 0.0))), dtype=np.float64)


def _pareto_log_a0(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, rec: FloatArray, age: FloatArray
) -> FloatArray:
    """log A0 of Fader & Hardie's note (eqs. 19, 20): the hypergeometric series in whichever of alpha, beta is
    larger, so that its argument stays in [0, 1)."""
    second: float | FloatArray
    if alpha >= beta:
        big, second = alpha, s + 1.0
    else:
        big, second = beta, r + x
    k = r + s + x
    gap = abs(alpha - beta)
    return _log_difference(_log_a0_term(k, second, big + rec, gap), _log_a0_term(k, second, big + age, gap))


def _pareto_log_likelihood(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, rec: FloatArray, age: FloatArray
) -> FloatArray:
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    log_a0 = _pareto_log_a0(r, alpha, s, beta, x, rec, age)
    alive_through = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    dropout = _patched(np.log(s) - np.log(r + s + x) + log_a0, r, alpha, s, beta, x, rec, age)
    return np.asarray(a1 + np.logaddexp(alive_through, dropout), dtype=np.float64)


def pareto_log_likelihood(p: ParetoNbdParams, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
    """Per customer log-likelihood of Pareto/NBD."""
    x, rec, age = np.broadcast_arrays(_f(frequency), _f(recency), _f(T))
    return _pareto_log_likelihood(p.r, p.alpha, p.s, p.beta, x, rec, age)


@dataclass(frozen=True)
class ParetoNbd:
    p: ParetoNbdParams
    name: str = PARETO_NBD

    def params(self) -> dict[str, float]:
        return asdict(self.p)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        x, rec, age = np.broadcast_arrays(_f(frequency), _f(recency), _f(T))
        r, alpha, s, beta = self.p.r, self.p.alpha, self.p.s, self.p.beta
        log_a0 = _pareto_log_a0(r, alpha, s, beta, x, rec, age)
        dropout = _patched(np.log(s) - np.log(r + s + x) + log_a0, r, alpha, s, beta, x, rec, age)
        log_odds_dead = dropout + (r + x) * np.log(alpha + age) + s * np.log(beta + age)
        return np.asarray(expit(-log_odds_dead), dtype=np.float64)

    def expected_purchases(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Conditional expectation of repeat purchases in the next ``t`` days (Fader & Hardie's note, eq. 41):
        P(alive) times the expected purchases of a customer alive now."""
        x, rec, age, tt = _f(frequency), _f(recency), _f(T), _f(t)
        r, alpha, s, beta = self.p.r, self.p.alpha, self.p.s, self.p.beta
        alive = self.probability_alive(x, rec, age)
        with np.errstate(divide="ignore", invalid="ignore"):
            if abs(s - 1.0) < 1e-9:
                horizon = np.log1p(tt / (beta + age))  # the limit of the general form at s = 1
            else:
                horizon = (1.0 - ((beta + age) / (beta + age + tt)) ** (s - 1.0)) / (s - 1.0)
            rate = (r + x) * (beta + age) / (alpha + age)
        return np.asarray(alive * rate * horizon, dtype=np.float64)


# -- the shared fitting base ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Histories:
    """Distinct (frequency, recency, T) triples with counts, time rescaled so that the oldest customer has T = 1."""

    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    weights: FloatArray
    scale: float
    n_customers: int

    @property
    def n_unique(self) -> int:
        return int(self.frequency.size)


def histories(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Histories:
    f, rec, age = _f(frequency).ravel(), _f(recency).ravel(), _f(T).ravel()
    _validate(f, rec, age)
    max_t = float(age.max())
    scale = 1.0 / max_t if max_t > 0 else 1.0
    uf, urec, uage, counts = _distinct_histories(f, rec, age, np.ones_like(f))
    return Histories(uf, urec * scale, uage * scale, counts, scale, int(f.size))


@dataclass(frozen=True)
class CandidateFit:
    """One fitted model. ``log_likelihood`` is the total over customers in days (comparable between models)."""

    model: PurchaseModel
    log_likelihood: float
    converged: bool
    iterations: int
    seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.model.name,
            "params": self.model.params(),
            "time_unit": TIME_UNIT,
            "log_likelihood": self.log_likelihood,
            "converged": self.converged,
            "iterations": self.iterations,
            "fit_seconds": round(self.seconds, 4),
        }


def _minimise(
    objective: Callable[[FloatArray], Any], start: FloatArray, jac: bool, tol: float, max_iter: int
) -> tuple[FloatArray, bool, int]:
    result: Any = minimize(objective, start, jac=jac or None, method="BFGS", options={"gtol": tol, "maxiter": max_iter})
    grad = result.jac if jac else None
    converged = bool(result.success) or (grad is not None and float(np.max(np.abs(grad))) < 1e-6)
    if not jac and not converged:
        # a finite-difference gradient stalls at its own noise: judge by how flat the objective is there
        converged = bool(np.all(np.isfinite(result.x))) and result.nit > 0 and "precision" in str(result.message)
    return np.asarray(result.x, dtype=np.float64), converged, int(result.nit)


def in_days(h: Histories) -> Histories:
    """The same histories in unscaled time, to evaluate log-likelihoods comparable between models."""
    return replace(h, recency=h.recency / h.scale, T=h.T / h.scale, scale=1.0)


def fit_bg_nbd(h: Histories, penalizer: float = 0.0) -> CandidateFit:
    fit = fit_bgnbd_detailed(h.frequency / 1.0, h.recency / h.scale, h.T / h.scale, penalizer, weights=h.weights)
    params = fit.params
    model = BgNbd(params)
    total = float(h.weights @ _bgnbd_ll(params, h.frequency, h.recency / h.scale, h.T / h.scale))
    return CandidateFit(model, total, fit.converged, fit.iterations)


def _bgnbd_ll(p: BgNbdParams, x: FloatArray, rec: FloatArray, age: FloatArray) -> FloatArray:
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    a12 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + gammaln(a + b) + gammaln(b + x) - gammaln(b)
    a12 -= gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * np.log(alpha + rec)
    return np.asarray(a12 + np.where(x > 0, np.logaddexp(a3, a4), a3), dtype=np.float64)


def _mbg_ll_and_grad(log_params: FloatArray, h: Histories, penalizer: float) -> tuple[float, FloatArray]:
    r, alpha, a, b = np.exp(log_params)
    x, rec, age, w = h.frequency, h.recency, h.T, h.weights / h.weights.sum()
    log_at, log_arec = np.log(alpha + age), np.log(alpha + rec)
    gap = log_at - log_arec
    d = np.log(a) - np.log(b + x) + (r + x) * gap
    ll = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x + 1.0)
        - gammaln(b)
        - gammaln(a + b + x + 1.0)
        - (r + x) * log_at
        + np.logaddexp(0.0, d)
    )
    sig = expit(d)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - log_at + sig * gap
    d_alpha = r / alpha - (r + x) / (alpha + age) + sig * (r + x) * (1.0 / (alpha + age) - 1.0 / (alpha + rec))
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x + 1.0)
    d_a = psi_ab - psi_abx + sig / a
    d_b = psi_ab + digamma(b + x + 1.0) - digamma(b) - psi_abx - sig / (b + x)
    params = np.array([r, alpha, a, b])
    grad = np.array([w @ d_r, w @ d_alpha, w @ d_a, w @ d_b])
    value = -float(w @ ll) + penalizer * float(params @ params)
    return value, -grad * params + 2.0 * penalizer * params * params


class MbgObjective:
    """``_mbg_ll_and_grad`` rearranged for speed, the way BG/NBD's objective is: the special functions depend on x
    alone and the logarithms on T or recency alone, so they are evaluated on the distinct values (a few hundred)
    and only the softplus and its sigmoid run per distinct triple."""

    def __init__(self, h: Histories, penalizer: float) -> None:
        w = h.weights / h.weights.sum()
        self.w, self.x = w, h.frequency
        self.x_u, self.x_idx = np.unique(h.frequency, return_inverse=True)
        self.T_u, self.T_idx = np.unique(h.T, return_inverse=True)
        self.rec_u, self.rec_idx = np.unique(h.recency, return_inverse=True)
        self.w_x = np.bincount(self.x_idx, weights=w, minlength=self.x_u.size)
        self.w_T = np.bincount(self.T_idx, weights=w, minlength=self.T_u.size)
        self.wx_T = np.bincount(self.T_idx, weights=w * h.frequency, minlength=self.T_u.size)
        self.penalizer = penalizer

    def __call__(self, log_params: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(log_params)
        xu = self.x_u
        by_x = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + gammaln(a + b)
        by_x += gammaln(b + xu + 1.0) - gammaln(b) - gammaln(a + b + xu + 1.0)
        log_at, log_arec = np.log(alpha + self.T_u), np.log(alpha + self.rec_u)
        by_t = r * self.w_T + self.wx_T  # sum of w (r + x) per distinct T
        gap = log_at[self.T_idx] - log_arec[self.rec_idx]
        rx = r + self.x
        d = (np.log(a) - np.log(b + xu))[self.x_idx] + rx * gap
        # softplus(d) and its derivative sigmoid(d) from one exponential
        e = np.exp(-np.abs(d))
        softplus = np.maximum(d, 0.0) + np.log1p(e)
        ll = float(self.w_x @ by_x - by_t @ log_at + self.w @ softplus)

        ws = self.w * np.where(d >= 0.0, 1.0, e) / (1.0 + e)
        wsrx = ws * rx
        inv_at, inv_arec = 1.0 / (alpha + self.T_u), 1.0 / (alpha + self.rec_u)
        psi_ab, psi_abx = digamma(a + b), digamma(a + b + xu + 1.0)
        d_r = self.w_x @ (digamma(r + xu) - digamma(r) + np.log(alpha)) - self.w_T @ log_at + float(ws @ gap)
        d_alpha = (
            r / alpha
            - by_t @ inv_at
            + np.bincount(self.T_idx, weights=wsrx, minlength=self.T_u.size) @ inv_at
            - np.bincount(self.rec_idx, weights=wsrx, minlength=self.rec_u.size) @ inv_arec
        )
        d_a = self.w_x @ (psi_ab - psi_abx) + float(ws.sum()) / a
        d_b = self.w_x @ (psi_ab + digamma(b + xu + 1.0) - digamma(b) - psi_abx) - np.bincount(
            self.x_idx, weights=ws, minlength=xu.size
        ) @ (1.0 / (b + xu))
        params = np.array([r, alpha, a, b])
        grad = np.array([d_r, d_alpha, d_a, d_b])
        value = -ll + self.penalizer * float(params @ params)
        return value, -grad * params + 2.0 * self.penalizer * params * params


def fit_mbg_nbd(h: Histories, penalizer: float = 0.0, tol: float = 1e-10, max_iter: int = 1000) -> CandidateFit:
    x, converged, iterations = _minimise(MbgObjective(h, penalizer), _INITIAL_LOG_PARAMS, True, tol, max_iter)
    r, alpha, a, b = (float(v) for v in np.exp(x))
    model = MbgNbd(MbgNbdParams(r=r, alpha=alpha / h.scale, a=a, b=b))
    p = model.p
    total = -_mbg_ll_and_grad(np.log([p.r, p.alpha, p.a, p.b]), in_days(h), 0.0)[0] * float(h.weights.sum())
    return CandidateFit(model, total, converged, iterations)


class _ParetoObjective:
    """Mean negative log-likelihood. The hypergeometric terms depend on (x, recency) and (x, T) pairs only, so they
    are evaluated on the distinct pairs and indexed back to the triples."""

    def __init__(self, h: Histories, penalizer: float) -> None:
        self.h = h
        self.w = h.weights / h.weights.sum()
        self.penalizer = penalizer
        pairs_rec, self.rec_idx = np.unique(np.stack([h.frequency, h.recency], axis=1), axis=0, return_inverse=True)
        pairs_age, self.age_idx = np.unique(np.stack([h.frequency, h.T], axis=1), axis=0, return_inverse=True)
        self.rec_idx, self.age_idx = self.rec_idx.ravel(), self.age_idx.ravel()
        self.pairs_rec, self.pairs_age = pairs_rec, pairs_age

    def log_likelihood(self, r: float, alpha: float, s: float, beta: float) -> FloatArray:
        h = self.h
        x = h.frequency
        second_rec: float | FloatArray
        second_age: float | FloatArray
        if alpha >= beta:
            big, second_rec, second_age = alpha, s + 1.0, s + 1.0
        else:
            big, second_rec, second_age = beta, r + self.pairs_rec[:, 0], r + self.pairs_age[:, 0]
        gap = abs(alpha - beta)
        k_rec, k_age = r + s + self.pairs_rec[:, 0], r + s + self.pairs_age[:, 0]
        at_rec = _log_a0_term(k_rec, second_rec, big + self.pairs_rec[:, 1], gap)
        at_age = _log_a0_term(k_age, second_age, big + self.pairs_age[:, 1], gap)
        log_a0 = _log_difference(at_rec[self.rec_idx], at_age[self.age_idx])
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        alive_through = -(r + x) * np.log(alpha + h.T) - s * np.log(beta + h.T)
        dropout = _patched(np.log(s) - np.log(r + s + x) + log_a0, r, alpha, s, beta, x, h.recency, h.T)
        return np.asarray(a1 + np.logaddexp(alive_through, dropout), dtype=np.float64)

    def __call__(self, log_params: FloatArray) -> float:
        if np.any(np.abs(log_params) > _PARETO_LOG_BOUND):
            return 1e300
        params = np.exp(log_params)
        ll = self.log_likelihood(*(float(v) for v in params))
        value = -float(self.w @ ll) + self.penalizer * float(params @ params)
        return value if np.isfinite(value) else 1e300


def fit_pareto_nbd(h: Histories, penalizer: float = 0.0, tol: float = 1e-9, max_iter: int = 1000) -> CandidateFit:
    objective = _ParetoObjective(h, penalizer)
    x, converged, iterations = _minimise(objective, _PARETO_INITIAL_LOG_PARAMS, False, tol, max_iter)
    # BFGS on a finite-difference gradient stops a little short; Nelder-Mead from there polishes the optimum
    polished: Any = minimize(
        objective, x, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 800}
    )
    if polished.fun <= objective(x):
        x = np.asarray(polished.x, dtype=np.float64)
    r, alpha, s, beta = (float(v) for v in np.exp(x))
    model = ParetoNbd(ParetoNbdParams(r=r, alpha=alpha / h.scale, s=s, beta=beta / h.scale))
    p = model.p
    total = float(h.weights @ _ParetoObjective(in_days(h), 0.0).log_likelihood(p.r, p.alpha, p.s, p.beta))
    return CandidateFit(model, total, converged, iterations)


FITTERS: dict[str, Callable[[Histories, float], CandidateFit]] = {
    BG_NBD: fit_bg_nbd,
    MBG_NBD: fit_mbg_nbd,
    PARETO_NBD: fit_pareto_nbd,
}


def model_from_params(name: str, params: dict[str, float]) -> PurchaseModel:
    if name == BG_NBD:
        return BgNbd(BgNbdParams(**params))
    if name == MBG_NBD:
        return MbgNbd(MbgNbdParams(**params))
    if name == PARETO_NBD:
        return ParetoNbd(ParetoNbdParams(**params))
    raise ValueError(f"unknown purchase model {name!r}")


def usable(fit: CandidateFit) -> bool:
    """A fit scoring may use: converged, finite and with a finite expected purchase count (a > 1 for the BG
    family divides by a - 1; Pareto/NBD's s = 1 has its own limit)."""
    params = fit.model.params()
    if not fit.converged or not all(np.isfinite(v) and v > 0 for v in params.values()):
        return False
    if fit.model.name in (BG_NBD, MBG_NBD) and abs(params["a"] - 1.0) <= 1e-6:
        return False
    return bool(np.isfinite(fit.log_likelihood))


def days_until_expected(
    model: PurchaseModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    threshold: float = 0.5,
    max_days: int = 365,
) -> npt.NDArray[np.int64]:
    """Smallest whole number of days d in [1, max_days] with expected_purchases(d) >= threshold, or -1 where it is
    not reached within ``max_days``: one evaluation over every day for one customer, a bisection for many (the
    conditional expectation grows with t)."""
    x, rec, age = np.broadcast_arrays(np.atleast_1d(_f(frequency)), np.atleast_1d(_f(recency)), np.atleast_1d(_f(T)))
    if x.size * max_days <= _GRID_LIMIT:
        days = np.arange(1, max_days + 1, dtype=np.float64).reshape((-1,) + (1,) * x.ndim)
        hit = model.expected_purchases(days, x, rec, age) >= threshold
        return np.where(hit.any(axis=0), hit.argmax(axis=0) + 1, -1).astype(np.int64)
    reached = model.expected_purchases(float(max_days), x, rec, age) >= threshold
    lo = np.zeros(x.shape, dtype=np.int64)
    hi = np.full(x.shape, max_days, dtype=np.int64)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = model.expected_purchases(mid.astype(np.float64), x, rec, age) >= threshold
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return np.where(reached, hi, -1)
