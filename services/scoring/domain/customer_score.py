"""Score one customer from plain facts: the composition the scoring service calls per event.

Population-level pieces (BG/NBD and Gamma-Gamma parameters, RFM quintile edges, rank references)
are fitted periodically over the whole base into a ``ScoringModel``; scoring a customer against it
is cheap (a few vectorised model evaluations, well under a millisecond).

Time conventions (Fader & Hardie's, and lifetimes' ``summary_data_from_transaction_data`` with freq="D"): a
transaction is a purchase DAY (UTC), several orders of one customer on one day being one transaction;
frequency = purchase days - 1, recency = days(first purchase day -> last), T = days(first purchase day -> as_of), and
the monetary value of Gamma-Gamma is the mean spend of the repeat purchase days (the first day excluded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np

from services.scoring.domain.bgnbd import BgNbdParams, FloatArray, fit_bgnbd_detailed
from services.scoring.domain.churn import ChurnAssessment, ChurnConfig, ChurnSignals, assess_churn
from services.scoring.domain.gamma_gamma import (
    GammaGammaParams,
    customer_lifetime_value,
    fit_gamma_gamma_detailed,
)
from services.scoring.domain.lifecycle import LifecycleConfig, Stage, lifecycle_stage
from services.scoring.domain.purchase_models import BgNbd, PurchaseModel, days_until_expected
from services.scoring.domain.rfm import (
    RankReference,
    RfmEdges,
    RfmScore,
    Tier,
    TierConfig,
    assign_tier,
    quintile_scores,
    rank_reference,
    rfm_edges,
    rfm_values,
    score_rfm,
)
from services.scoring.domain.thresholds import ScoreSnapshot


@dataclass(frozen=True)
class CustomerFacts:
    """What the scoring service knows about a customer (from profile changes and feedback).
    Ratios are last-30-days rate / preceding-90-days baseline rate."""

    customer_id: str
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    purchase_count: int = 0
    total_spend: float = 0.0
    typical_interval_days: float | None = None
    last_login_at: datetime | None = None
    login_ratio_30_90: float | None = None
    purchase_ratio_30_90: float | None = None
    spend_ratio_30_90: float | None = None
    open_complaints: int = 0
    sla_breached: bool = False
    last_nps: int | None = None
    # distinct UTC purchase days and the spend of all but the first of them; None: every order on a day of its own
    purchase_days: int | None = None
    repeat_day_spend: float | None = None

    @property
    def transactions(self) -> int:
        """Purchase days: the transactions of the BTYD models."""
        return self.purchase_count if self.purchase_days is None else self.purchase_days

    @property
    def monetary_value(self) -> float:
        """Mean spend of the repeat transactions (Gamma-Gamma's m); 0 without a repeat transaction."""
        repeats = self.transactions - 1
        if repeats <= 0:
            return 0.0
        if self.repeat_day_spend is None:
            return self.total_spend / self.purchase_count  # orders on days of their own: no first day to tell apart
        return self.repeat_day_spend / repeats

    @property
    def is_buyer(self) -> bool:
        return self.purchase_count > 0 and self.first_purchase_at is not None and self.last_purchase_at is not None


@dataclass(frozen=True)
class ScoringConfig:
    tier: TierConfig = field(default_factory=TierConfig)
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    churn: ChurnConfig = field(default_factory=ChurnConfig)
    clv_horizon_months: int = 12
    clv_discount_rate_monthly: float = 0.01
    next_purchase_threshold: float = 0.5  # expected cumulative purchases that count as "the next one"
    next_purchase_max_days: int = 365
    min_buyers_to_fit: int = 50  # below this the models are noise; tiers fall back to RFM


@dataclass(frozen=True, eq=False)
class ScoringModel:
    """Population summary the per-customer scoring needs. ``bgnbd`` / ``gamma_gamma`` are None when
    the base is too small or the fit is unusable; ``clv_rank`` is None when CLV is unavailable."""

    rfm_edges: RfmEdges
    rfm_rank: RankReference
    bgnbd: BgNbdParams | None = None
    gamma_gamma: GammaGammaParams | None = None
    clv_rank: RankReference | None = None
    # the purchase model chosen on the holdout; None: BG/NBD (``bgnbd``) when that is fitted
    purchase: PurchaseModel | None = None

    @property
    def purchase_model(self) -> PurchaseModel | None:
        if self.purchase is not None:
            return self.purchase
        return None if self.bgnbd is None else BgNbd(self.bgnbd)


@dataclass(frozen=True)
class CustomerScore:
    customer_id: str
    as_of: datetime
    rfm: RfmScore
    value_rank: float  # percentile of the ranking key in the base of buyers, 0..1
    value_basis: Literal["clv", "rfm", "none", "spend"]  # "spend": small-base fallback (small_base.py)
    tier: Tier
    stage: Stage
    churn: ChurnAssessment
    p_alive: float | None
    clv: float | None
    expected_purchases_30d: float | None
    expected_purchases_90d: float | None
    predicted_next_purchase_at: datetime | None

    def snapshot(self) -> ScoreSnapshot:
        return ScoreSnapshot(
            tier=self.tier,
            stage=self.stage,
            churn_risk=self.churn.risk,
            churn_reasons=self.churn.reason_codes,
            clv=self.clv,
        )


def _utc_day(dt: datetime) -> int:
    """Day ordinal of the UTC calendar date (naive datetimes are taken as UTC)."""
    d = dt.astimezone(UTC) if dt.tzinfo is not None else dt
    return d.date().toordinal()


def bgnbd_inputs(
    first_purchase_at: datetime, last_purchase_at: datetime, transactions: int, as_of: datetime
) -> tuple[float, float, float]:
    """(frequency, recency, T) in whole days from the number of purchase days. Timestamps after the clock are
    clamped to it."""
    first = _utc_day(first_purchase_at)
    now = max(_utc_day(as_of), first)
    last = min(max(_utc_day(last_purchase_at), first), now)
    return float(max(transactions - 1, 0)), float(last - first), float(now - first)


def build_scoring_model(
    customers: Sequence[CustomerFacts], as_of: datetime, config: ScoringConfig | None = None, penalizer: float = 0.0
) -> ScoringModel:
    """Fit the population models over the base. Never-buyers take no part (they have no RFM or
    purchase history), so tiers are shares of the buying base."""
    cfg = config or ScoringConfig()
    buyers = [c for c in customers if c.is_buyer]
    if not buyers:
        raise ValueError("no buyer in the base: nothing to rank against")
    n = len(buyers)
    freq = np.empty(n)
    rec = np.empty(n)
    age = np.empty(n)
    recency_days = np.empty(n)
    count = np.empty(n)
    spend = np.empty(n)
    monetary = np.empty(n)
    for i, c in enumerate(buyers):
        assert c.first_purchase_at is not None and c.last_purchase_at is not None  # is_buyer
        freq[i], rec[i], age[i] = bgnbd_inputs(c.first_purchase_at, c.last_purchase_at, c.transactions, as_of)
        rv = rfm_values(as_of, c.last_purchase_at, c.purchase_count, c.total_spend)
        recency_days[i] = rv.recency_days if rv.recency_days is not None else 0.0
        count[i] = c.purchase_count
        spend[i] = c.total_spend
        monetary[i] = c.monetary_value
    return build_scoring_model_from_arrays(freq, rec, age, recency_days, count, spend, cfg, penalizer, monetary)


def build_scoring_model_from_arrays(
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
    recency_days: FloatArray,
    purchase_count: FloatArray,
    total_spend: FloatArray,
    config: ScoringConfig | None = None,
    penalizer: float = 0.0,
    monetary_value: FloatArray | None = None,
    purchase: PurchaseModel | None = None,
) -> ScoringModel:
    """Same as ``build_scoring_model`` on column arrays of buyers (the fast path for big bases).

    ``monetary_value``: mean spend of the repeat purchase days (default: spend per order). ``purchase``: the
    purchase model chosen elsewhere (model selection); when given, CLV ranks are computed with it."""
    cfg = config or ScoringConfig()
    edges = rfm_edges(recency_days, purchase_count, total_spend)
    composite = (
        quintile_scores(recency_days, edges.recency, higher_is_better=False)
        + quintile_scores(purchase_count, edges.frequency)
        + quintile_scores(total_spend, edges.monetary)
    )
    model = ScoringModel(rfm_edges=edges, rfm_rank=rank_reference(composite))
    if frequency.size < cfg.min_buyers_to_fit:
        return model

    bg_fit = fit_bgnbd_detailed(frequency, recency, T, penalizer=penalizer)
    # expected_purchases divides by a - 1
    bg = bg_fit.params if bg_fit.converged and abs(bg_fit.params.a - 1.0) > 1e-6 else None
    driver = purchase if purchase is not None else (None if bg is None else BgNbd(bg))
    gg: GammaGammaParams | None = None
    if monetary_value is None:
        aov = np.where(purchase_count > 0, total_spend / np.maximum(purchase_count, 1), 0.0)
    else:
        aov = monetary_value
    repeat = (frequency > 0) & (aov > 0)
    if int(repeat.sum()) >= cfg.min_buyers_to_fit:
        gg_fit = fit_gamma_gamma_detailed(frequency[repeat], aov[repeat], penalizer=penalizer)
        # q <= 1 means an infinite population mean spend: CLV would be meaningless
        gg = gg_fit.params if gg_fit.converged and gg_fit.params.q > 1.0 else None
    clv_rank = None
    if driver is not None and gg is not None:
        clv = customer_lifetime_value(
            driver, gg, frequency, recency, T, aov, cfg.clv_horizon_months, cfg.clv_discount_rate_monthly
        )
        clv_rank = rank_reference(clv)
    return ScoringModel(
        rfm_edges=edges, rfm_rank=model.rfm_rank, bgnbd=bg, gamma_gamma=gg, clv_rank=clv_rank, purchase=purchase
    )


@dataclass(frozen=True)
class _Predictions:
    """What the purchase model says of one buyer; all None without a model or for a never-buyer."""

    p_alive: float | None = None
    clv: float | None = None
    expected_30d: float | None = None
    expected_90d: float | None = None
    next_at: datetime | None = None


def _predictions(facts: CustomerFacts, as_of: datetime, model: ScoringModel, cfg: ScoringConfig) -> _Predictions:
    driver = model.purchase_model
    if not facts.is_buyer or driver is None:
        return _Predictions()
    assert facts.first_purchase_at is not None and facts.last_purchase_at is not None
    f, r, t_age = bgnbd_inputs(facts.first_purchase_at, facts.last_purchase_at, facts.transactions, as_of)
    p_alive = float(driver.probability_alive(f, r, t_age))
    horizons = driver.expected_purchases(np.array([30.0, 90.0]), f, r, t_age)
    days = int(days_until_expected(driver, f, r, t_age, cfg.next_purchase_threshold, cfg.next_purchase_max_days)[0])
    clv: float | None = None
    if model.gamma_gamma is not None:
        aov = facts.monetary_value
        clv = float(
            customer_lifetime_value(
                driver,
                model.gamma_gamma,
                f,
                r,
                t_age,
                aov,
                cfg.clv_horizon_months,
                cfg.clv_discount_rate_monthly,
            )
        )
    return _Predictions(
        p_alive=p_alive,
        clv=clv,
        expected_30d=float(horizons[0]),
        expected_90d=float(horizons[1]),
        # counted from the clock: the model's expectation is about the future from as_of
        next_at=as_of + timedelta(days=days) if days > 0 else None,
    )


def _value_rank(
    facts: CustomerFacts, rfm: RfmScore, clv: float | None, model: ScoringModel
) -> tuple[Literal["clv", "rfm", "none"], float]:
    """The basis of the customer's value and their percentile rank in the base on it."""
    if not facts.is_buyer:
        # never-buyers are outside the ranked base; they have no value to rank yet
        return "none", 0.0
    if clv is not None and model.clv_rank is not None:
        return "clv", float(model.clv_rank.percentile_rank(clv))
    return "rfm", float(model.rfm_rank.percentile_rank(float(rfm.composite)))


def _churn_signals(facts: CustomerFacts, as_of: datetime, p_alive: float | None) -> ChurnSignals:
    days_since_login = None
    if facts.last_login_at is not None:
        days_since_login = max((as_of - facts.last_login_at).total_seconds() / 86400.0, 0.0)
    return ChurnSignals(
        p_alive=p_alive,
        days_since_login=days_since_login,
        purchase_ratio=facts.purchase_ratio_30_90,
        login_ratio=facts.login_ratio_30_90,
        spend_ratio=facts.spend_ratio_30_90,
        open_complaints=facts.open_complaints,
        sla_breached=facts.sla_breached,
        last_nps=facts.last_nps,
    )


def score_customer(
    facts: CustomerFacts,
    as_of: datetime,
    model: ScoringModel,
    previous: ScoreSnapshot | None = None,
    config: ScoringConfig | None = None,
) -> CustomerScore:
    """RFM, lifecycle stage, the model's predictions, value tier and churn risk of one customer as of `as_of`."""
    cfg = config or ScoringConfig()
    rfm = score_rfm(rfm_values(as_of, facts.last_purchase_at, facts.purchase_count, facts.total_spend), model.rfm_edges)
    stage = lifecycle_stage(
        as_of,
        facts.first_purchase_at,
        facts.last_purchase_at,
        facts.typical_interval_days,
        previous.stage if previous is not None else None,
        cfg.lifecycle,
    )
    predicted = _predictions(facts, as_of, model, cfg)
    basis, rank = _value_rank(facts, rfm, predicted.clv, model)
    tier = assign_tier(rank, previous.tier if previous is not None else None, cfg.tier)
    churn = assess_churn(_churn_signals(facts, as_of, predicted.p_alive), cfg.churn)
    return CustomerScore(
        customer_id=facts.customer_id,
        as_of=as_of,
        rfm=rfm,
        value_rank=rank,
        value_basis=basis,
        tier=tier,
        stage=stage,
        churn=churn,
        p_alive=predicted.p_alive,
        clv=predicted.clv,
        expected_purchases_30d=predicted.expected_30d,
        expected_purchases_90d=predicted.expected_90d,
        predicted_next_purchase_at=predicted.next_at,
    )
