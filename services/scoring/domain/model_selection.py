"""Choosing the purchase model on a holdout, as lifetimes' ``calibration_and_holdout_data`` sets the test up.

Every candidate (purchase_models.FITTERS) is fitted twice: on the purchases up to a cut-off day (calibration), to
predict each customer's repeat purchase days after it (holdout), and on everything, to score with. The candidate
whose calibration fit predicts the holdout best (root-mean-square error per customer) is chosen; without a usable
holdout (too few customers before the cut-off, or no time after it) the best log-likelihood on all data decides.
The predicted vs actual table by calibration frequency is the one behind lifetimes'
``plot_calibration_purchases_vs_holdout_purchases``: it is kept with the model, to watch drift.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from services.scoring.domain.bgnbd import FloatArray
from services.scoring.domain.purchase_models import (
    FITTERS,
    TIME_UNIT,
    CandidateFit,
    PurchaseModel,
    histories,
    usable,
)

FREQUENCY_BUCKETS = 7  # calibration frequency 0, 1, ..., 6 and "7 or more"


@dataclass(frozen=True)
class Summaries:
    """Per buyer, whole UTC days: first and last purchase day, purchase days; within calibration (days up to the
    cut-off) the purchase days and the last of them; after it, the purchase days up to the clock."""

    first_day: FloatArray
    last_day: FloatArray
    purchase_days: FloatArray
    cal_days: FloatArray
    cal_last_day: FloatArray
    holdout_days: FloatArray


@dataclass(frozen=True)
class Triples:
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray


def full_triples(s: Summaries, today: float) -> Triples:
    now = np.maximum(today, s.first_day)
    last = np.minimum(np.maximum(s.last_day, s.first_day), now)
    return Triples(np.maximum(s.purchase_days - 1.0, 0.0), last - s.first_day, now - s.first_day)


@dataclass
class Selection:
    chosen: PurchaseModel | None
    chosen_name: str | None
    basis: str  # "holdout" or "log_likelihood" or "none"
    candidates: list[dict[str, Any]] = field(default_factory=list)
    holdout: dict[str, Any] = field(default_factory=dict)


def _fit_all(f: FloatArray, r: FloatArray, t: FloatArray, penalizer: float) -> dict[str, CandidateFit | None]:
    shared = histories(f, r, t)
    fits: dict[str, CandidateFit | None] = {}
    for name, fitter in FITTERS.items():
        started = time.perf_counter()
        try:
            fit = fitter(shared, penalizer)
        except (ValueError, FloatingPointError, ArithmeticError):
            fits[name] = None
            continue
        fits[name] = CandidateFit(
            fit.model, fit.log_likelihood, fit.converged, fit.iterations, time.perf_counter() - started
        )
    return fits


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _by_bucket(frequency: FloatArray, predicted: FloatArray, actual: FloatArray) -> list[dict[str, Any]]:
    bucket = np.minimum(frequency, FREQUENCY_BUCKETS).astype(np.int64)
    out = []
    for b in range(FREQUENCY_BUCKETS + 1):
        mask = bucket == b
        n = int(mask.sum())
        if n == 0:
            continue
        out.append(
            {
                "calibration_frequency": f"{b}+" if b == FREQUENCY_BUCKETS else str(b),
                "customers": n,
                "predicted_mean": _finite(float(predicted[mask].mean())),
                "actual_mean": float(actual[mask].mean()),
            }
        )
    return out


def holdout_errors(model: PurchaseModel, cal: Triples, actual: FloatArray, duration: float) -> dict[str, Any]:
    """How well ``model`` predicts the repeat purchase days in the holdout: per customer and in total."""
    with np.errstate(all="ignore"):
        predicted = np.asarray(model.expected_purchases(duration, cal.frequency, cal.recency, cal.T), dtype=np.float64)
    if not np.all(np.isfinite(predicted)):
        return {"rmse": None, "mae": None}
    error = predicted - actual
    total_predicted, total_actual = float(predicted.sum()), float(actual.sum())
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "predicted_total": total_predicted,
        "actual_total": total_actual,
        # relative error of the base's total: the drift figure
        "total_relative_error": (total_predicted - total_actual) / total_actual if total_actual > 0 else None,
        "by_frequency": _by_bucket(cal.frequency, predicted, actual),
    }


def select_model(s: Summaries, today: float, cut_day: float, penalizer: float, min_customers: int) -> Selection:
    """Fits every candidate on all data and on the calibration window; chooses by holdout error."""
    full = full_triples(s, today)
    if full.frequency.size == 0:
        return Selection(None, None, "none")
    on_all = _fit_all(full.frequency, full.recency, full.T, penalizer)

    in_cal = (s.first_day <= cut_day) & (s.cal_days > 0)
    duration = today - cut_day
    holdout: dict[str, Any] = {
        "time_unit": TIME_UNIT,
        "cutoff_day": cut_day,
        "duration": duration,
        "customers": int(in_cal.sum()),
    }
    on_cal: dict[str, CandidateFit | None] = {}
    errors: dict[str, dict[str, Any]] = {}
    if duration > 0 and int(in_cal.sum()) >= min_customers:
        cal = Triples(
            np.maximum(s.cal_days[in_cal] - 1.0, 0.0),
            s.cal_last_day[in_cal] - s.first_day[in_cal],
            cut_day - s.first_day[in_cal],
        )
        actual = s.holdout_days[in_cal]
        on_cal = _fit_all(cal.frequency, cal.recency, cal.T, penalizer)
        for name, fit in on_cal.items():
            if fit is not None and usable(fit):
                errors[name] = holdout_errors(fit.model, cal, actual, duration)

    candidates: list[dict[str, Any]] = []
    for name, fit in on_all.items():
        entry: dict[str, Any] = {"name": name, "usable": fit is not None and usable(fit)}
        if fit is not None:
            entry.update(fit.describe())
        cal_fit = on_cal.get(name)
        entry["calibration"] = (
            None if cal_fit is None else {"params": cal_fit.model.params(), "log_likelihood": cal_fit.log_likelihood}
        )
        entry["holdout"] = errors.get(name)
        candidates.append(entry)

    usable_all = {name: fit for name, fit in on_all.items() if fit is not None and usable(fit)}
    ranked = [
        (errors[name]["rmse"], name) for name in usable_all if name in errors and errors[name]["rmse"] is not None
    ]
    if ranked:
        chosen_name, basis = min(ranked)[1], "holdout"
    elif usable_all:
        chosen_name, basis = max((fit.log_likelihood, name) for name, fit in usable_all.items())[1], "log_likelihood"
    else:
        return Selection(None, None, "none", candidates, holdout)
    for entry in candidates:
        entry["chosen"] = entry["name"] == chosen_name
    holdout["chosen"] = errors.get(chosen_name)
    return Selection(usable_all[chosen_name].model, chosen_name, basis, candidates, holdout)
