"""Pareto/NBD's likelihood is a number wherever the optimiser may step: the hypergeometric form and the drop-out
integral it stands for agree where both are computed, and where scipy's form gives no value (NaN before, with
`invalid value encountered in logaddexp`) the integral answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from services.scoring.domain.purchase_models import (
    ParetoNbd,
    ParetoNbdParams,
    _log_dropout,
    _pareto_log_a0,
    pareto_log_likelihood,
)

X = np.array([0.0, 1.0, 3.0, 10.0, 25.0])
REC = np.array([0.0, 0.2, 0.5, 0.9, 0.3])
AGE = np.array([1.0, 0.8, 0.9, 1.0, 0.95])


@pytest.mark.parametrize(
    "params", [(0.55, 10.6, 0.6, 11.7), (2.0, 5.0, 0.3, 1.0), (0.64, 0.227, 2.5, 9.0), (0.3, 0.05, 40.0, 30.0)]
)
def test_the_hypergeometric_form_is_the_drop_out_integral(params: tuple[float, float, float, float]) -> None:
    r, alpha, s, beta = params
    series = np.log(s) - np.log(r + s + X) + _pareto_log_a0(r, alpha, s, beta, X, REC, AGE)
    assert series == pytest.approx(_log_dropout(r, alpha, s, beta, X, REC, AGE), rel=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        # where the CDNOW holdout fit's line search went (rescaled time): the direct series overflowed there
        (0.6402250307309142, 0.2267932814500179, 219.7937217387376, 89.85508886162947),
        (0.6337926768379494, 0.22200694129753434, 41775.17554231341, 17151.15642480831),
    ],
)
def test_the_likelihood_is_finite_where_the_series_overflows(params: tuple[float, float, float, float]) -> None:
    p = ParetoNbdParams(*params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ll = pareto_log_likelihood(p, X, REC, AGE)
        alive = ParetoNbd(p).probability_alive(X, REC, AGE)
    assert np.all(np.isfinite(ll)) and np.all((alive >= 0) & (alive <= 1))
    # the likelihood of the whole history is at least the chance of being alive through T with those purchases
    r, alpha, s, beta = params
    from scipy.special import gammaln

    alive_through = gammaln(r + X) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive_through += -(r + X) * np.log(alpha + AGE) - s * np.log(beta + AGE)
    assert np.all(ll >= alive_through)
