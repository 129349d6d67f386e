"""Refitting the population models and rescoring the whole base with them.

Only one replica refits at a time: the refit holds a transaction-scoped PostgreSQL advisory lock
for its whole duration (released by the server even if the process dies), and a replica that does
not get it skips. Fitting is CPU-bound numpy/scipy work and runs in a thread so the event loop keeps
serving HTTP and consuming events meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common import metrics
from libs.common.contracts import DriftDetected, derived
from libs.common.envelope import CloudEvent, format_time
from libs.common.outbox import Outbox
from libs.common.topics import SCORE_CHANGES
from services.scoring.adapters import history, scores
from services.scoring.domain.bgnbd import FloatArray
from services.scoring.domain.customer_score import ScoringConfig, ScoringModel, build_scoring_model_from_arrays
from services.scoring.domain.model_selection import Selection, Summaries, full_triples, select_model
from services.scoring.domain.policy import ActiveModel
from services.scoring.domain.purchase_models import TIME_UNIT
from services.scoring.domain.rfm import RfmEdges
from services.scoring.domain.small_base import PRIOR_RFM_EDGES, prior_model
from services.scoring.handlers.deps import ScoringDeps
from services.scoring.handlers.rescore import Rescore, score_batch

log = logging.getLogger(__name__)

REFIT_LOCK_ID = 0x53434F52494E47  # "SCORING"
_SECONDS_PER_DAY = 86_400.0


class RefitInProgress(Exception):
    """Another replica (or request) holds the refit lock."""


@dataclass(frozen=True)
class Fitted:
    model: ScoringModel
    small_base: bool
    n_buyers: int
    n_unique_triples: int
    fit_seconds: float
    selection: Selection | None


@dataclass(frozen=True)
class RefitResult:
    version: int
    as_of: datetime
    n_customers: int
    n_buyers: int
    small_base: bool
    rescored: int
    events: int
    seconds: float


def fit_base(
    columns: FloatArray,
    as_of: datetime,
    config: ScoringConfig,
    penalizer: float,
    holdout_days: float = 90.0,
) -> Fitted:
    """Pure and CPU-bound (call it in a thread). ``columns`` holds one row per buyer (scores.BUYER_COLUMNS): orders,
    total spend, first and last purchase UTC day, last purchase epoch seconds, purchase days, repeat-day spend,
    calibration purchase days, last calibration purchase day and holdout purchase days, for a cut-off
    ``holdout_days`` before ``as_of``. Day numbers are floor(epoch / 86400): differences equal calendar-day
    differences, as ``customer_score.bgnbd_inputs`` computes them for one customer."""
    started = time.perf_counter()
    n = int(columns.shape[0])
    if n < config.min_buyers_to_fit:
        return Fitted(prior_model(PRIOR_RFM_EDGES), True, n, 0, time.perf_counter() - started, None)
    c = {name: columns[:, i] for i, name in enumerate(scores.BUYER_COLUMNS)}
    now_epoch = as_of.timestamp()
    today = float(np.floor(now_epoch / _SECONDS_PER_DAY))
    summaries = Summaries(
        first_day=c["first_day"],
        last_day=c["last_day"],
        purchase_days=c["purchase_days"],
        cal_days=c["cal_days"],
        cal_last_day=c["cal_last_day"],
        holdout_days=c["holdout_days"],
    )
    triples = full_triples(summaries, today)
    selection = select_model(summaries, today, cutoff_day(as_of, holdout_days), penalizer, config.min_buyers_to_fit)
    repeats = np.maximum(triples.frequency, 1.0)
    monetary = np.where(triples.frequency > 0, c["repeat_day_spend"] / repeats, 0.0)
    recency_days = np.maximum((now_epoch - c["last_epoch"]) / _SECONDS_PER_DAY, 0.0)
    model = build_scoring_model_from_arrays(
        triples.frequency,
        triples.recency,
        triples.T,
        recency_days,
        c["orders"],
        c["total_spend"],
        config,
        penalizer,
        monetary_value=monetary,
        purchase=selection.chosen,
    )
    unique = np.unique(np.stack([triples.frequency, triples.recency, triples.T], axis=1), axis=0).shape[0]
    return Fitted(model, False, n, int(unique), time.perf_counter() - started, selection)


def cutoff_day(as_of: datetime, holdout_days: float) -> float:
    """The last UTC day of the calibration window."""
    return float(np.floor(as_of.timestamp() / _SECONDS_PER_DAY) - np.floor(holdout_days))


HOLDOUT_ERROR = Gauge(
    "retain_scoring_holdout_error",
    "Error of each purchase model's prediction of the holdout at the last refit: rmse (repeat purchase days per "
    "customer) and total_relative_error ((predicted - actual) / actual over the base).",
    ["service", "model", "measure"],
    multiprocess_mode="livemostrecent",
)
DRIFT_EVENT_TYPE = "scoring.drift_detected"


def publish_holdout_errors(service: str, selection: Selection | None) -> None:
    if selection is None:
        return
    for candidate in selection.candidates:
        errors = candidate.get("holdout") or {}
        for measure in ("rmse", "total_relative_error"):
            value = errors.get(measure)
            if isinstance(value, float) and np.isfinite(value):
                HOLDOUT_ERROR.labels(service, candidate["name"], measure).set(value)


def drift_event(version: int, selection: Selection | None, threshold: float, as_of: datetime) -> CloudEvent | None:
    """`scoring.drift_detected` when the chosen model's prediction of the holdout's total repeat purchases is off
    by more than ``threshold`` (relative): the model no longer describes the base as it did."""
    if selection is None or selection.chosen_name is None:
        return None
    errors = selection.holdout.get("chosen") or {}
    relative = errors.get("total_relative_error")
    if not isinstance(relative, float) or not np.isfinite(relative) or abs(relative) <= threshold:
        return None
    _, event = derived(
        DriftDetected.model_validate(
            {
                "model_version": version,
                "model": selection.chosen_name,
                "threshold": threshold,
                "total_relative_error": relative,
                "predicted_total": errors.get("predicted_total"),
                "actual_total": errors.get("actual_total"),
                "rmse": errors.get("rmse"),
                "by_frequency": errors.get("by_frequency", []),
                "time_unit": TIME_UNIT,
                "holdout_days": selection.holdout.get("duration"),
            }
        ),
        cause=f"refit:{version}",
        source="retain/scoring",
        subject=f"model:{version}",
        time=as_of,
    )
    return event


def _edges_json(edges: RfmEdges) -> dict[str, list[float]]:
    return {"recency": list(edges.recency), "frequency": list(edges.frequency), "monetary": list(edges.monetary)}


def _json_safe(value: Any) -> Any:
    """NaN and infinities are not JSON: a figure that is not finite is reported as missing."""
    if isinstance(value, np.floating | np.integer):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


async def refit(
    deps: ScoringDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *, trigger: str
) -> RefitResult:
    """Fit, store a new version, rescore every customer in batches. Raises RefitInProgress when
    another refit holds the lock (not a failure: the other one is doing the work)."""
    name = deps.settings.service
    try:
        result = await _refit(deps, sessions, outbox, trigger=trigger)
    except RefitInProgress:
        raise
    except Exception:
        metrics.MODEL_REFITS.labels(name, trigger, "failed").inc()
        raise
    metrics.MODEL_REFITS.labels(name, trigger, "succeeded").inc()
    metrics.MODEL_LAST_REFIT.labels(name).set_to_current_time()
    return result


def _model_row(
    fitted: Fitted, as_of: datetime, n_customers: int, trigger: str, config: ScoringConfig
) -> dict[str, Any]:
    """The stored row of a fitted model: parameters, ranks, diagnostics and the model selection."""
    model = fitted.model
    selection = fitted.selection
    return dict(
        as_of=as_of,
        n_customers=n_customers,
        n_buyers=fitted.n_buyers,
        n_unique_triples=fitted.n_unique_triples,
        small_base=fitted.small_base,
        bgnbd=None if model.bgnbd is None else asdict(model.bgnbd),
        gamma_gamma=None if model.gamma_gamma is None else asdict(model.gamma_gamma),
        rfm_edges=_edges_json(model.rfm_edges),
        rfm_rank=[float(v) for v in model.rfm_rank.sorted_values],
        clv_rank=None if model.clv_rank is None else [float(v) for v in model.clv_rank.sorted_values],
        diagnostics={
            "trigger": trigger,
            "fit_seconds": round(fitted.fit_seconds, 4),
            "min_buyers_to_fit": config.min_buyers_to_fit,
            "bgnbd_usable": model.bgnbd is not None,
            "gamma_gamma_usable": model.gamma_gamma is not None,
            "time_unit": TIME_UNIT,
            "chosen_by": None if selection is None else selection.basis,
        },
        chosen_model=None if selection is None else selection.chosen_name,
        candidates=None if selection is None else _json_safe(selection.candidates),
        holdout=None if selection is None else _json_safe(selection.holdout),
    )


async def _refit(
    deps: ScoringDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *, trigger: str
) -> RefitResult:
    started = time.perf_counter()
    settings = deps.settings
    async with sessions() as lock_session, lock_session.begin():
        if not await scores.try_refit_lock(lock_session, REFIT_LOCK_ID):
            raise RefitInProgress("a refit is already running")
        holdout_days = settings.scoring_holdout_days
        async with sessions() as session:
            as_of = await deps.clock(session)
            n_customers, buyers = await scores.load_buyers(session, as_of, cutoff_day(as_of, holdout_days))
        fitted = await asyncio.to_thread(
            fit_base, buyers, as_of, deps.config, settings.scoring_refit_penalizer, holdout_days
        )
        model = fitted.model
        selection = fitted.selection
        async with sessions() as session, session.begin():
            version = await scores.insert_model(session, _model_row(fitted, as_of, n_customers, trigger, deps.config))
            drift = drift_event(version, selection, settings.scoring_drift_threshold, as_of)
            if drift is not None:
                await outbox.add(session, SCORE_CHANGES, drift)
        publish_holdout_errors(settings.service, selection)
        active = ActiveModel(version=int(version), model=model, small_base=fitted.small_base)
        deps.use_model(active)
        rescored, emitted = await rescore_base(deps, sessions, outbox, active, as_of)
        async with sessions() as session, session.begin():
            retention = timedelta(days=settings.scoring_history_retention_days)
            await history.purge_before(session, as_of - retention)
    result = RefitResult(
        version=int(version),
        as_of=as_of,
        n_customers=n_customers,
        n_buyers=fitted.n_buyers,
        small_base=fitted.small_base,
        rescored=rescored,
        events=emitted,
        seconds=time.perf_counter() - started,
    )
    log.info("model refitted", extra={"version": result.version, "rescored": rescored, "events": emitted})
    return result


async def rescore_base(
    deps: ScoringDeps,
    sessions: async_sessionmaker[AsyncSession],
    outbox: Outbox,
    active: ActiveModel,
    as_of: datetime,
) -> tuple[int, int]:
    """Keyset pages over customers; each page is one transaction (locks, scores, events)."""
    after = ""
    rescored = emitted = 0
    cause = f"refit:{active.version}"
    while True:
        async with sessions() as session, session.begin():
            ids = await scores.customer_ids_after(session, after, deps.settings.scoring_rescore_batch_size)
            if not ids:
                return rescored, emitted
            stored, documents = await scores.lock_and_load(session, ids, create_missing=False)
            work = [Rescore(cid, cause, as_of, as_of, "refit") for cid in ids if cid in stored]  # erased: skip
            batch = await asyncio.to_thread(score_batch, deps, work, stored, documents, active)
            await scores.save(session, [], batch.documents)
            await batch.store_history_and_due(session)
            if batch.events:
                await outbox.add(session, SCORE_CHANGES, *batch.events)
            rescored += len(work)
            emitted += len(batch.events)
            after = ids[-1]


def describe(result: RefitResult) -> dict[str, Any]:
    return {
        "version": result.version,
        "as_of": format_time(result.as_of),
        "n_customers": result.n_customers,
        "n_buyers": result.n_buyers,
        "small_base": result.small_base,
        "rescored": result.rescored,
        "events": result.events,
        "seconds": round(result.seconds, 3),
    }


async def refit_if_due(deps: ScoringDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> float:
    """Refits when the newest model is older than the interval by the service's clock (the injected wall clock live,
    the newest event time in replay, so a replayed year refits as often as living through it did), or when there is
    none; returns the seconds until it is due again by that clock."""
    interval = deps.settings.scoring_refit_interval_s
    async with sessions() as session:
        newest = await scores.newest_model_as_of(session)
        now = await deps.clock(session)
    age = None if newest is None else (now - newest).total_seconds()
    if age is None or age >= interval:
        await refit(deps, sessions, outbox, trigger="schedule")
        return interval
    return interval - age


async def refit_periodically(deps: ScoringDeps, sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> None:
    """Refits when due (``refit_if_due``), then sleeps until the next due time. Checking the stored model's age
    rather than sleeping a fixed interval from start-up means restarts and several replicas do not multiply refits.
    In replay the clock moves with the events, not with the sleep: it looks again at least every due interval."""
    settings = deps.settings
    while True:
        try:
            wait = await refit_if_due(deps, sessions, outbox)
            if settings.clock_mode == "replay":
                wait = min(wait, settings.scoring_due_interval_s)
            await asyncio.sleep(max(wait, 1.0))
        except RefitInProgress:
            await asyncio.sleep(min(settings.scoring_refit_interval_s, 60.0))
        except asyncio.CancelledError:
            raise
        except Exception:
            # a failed fit must not take the consumers down with it; the next round tries again
            log.exception("scheduled refit failed")
            await asyncio.sleep(min(settings.scoring_refit_interval_s, 300.0))
