"""Churn risk in [0, 1] with the reasons behind it.

Combination (noisy-or): every signal i that fires contributes a strength s_i in [0, 1] and
risk = 1 - prod(1 - s_i). Read it as "the chance that at least one independent cause makes the
customer leave". It is order-independent, stays in [0, 1], never decreases when a signal is added,
and a single strong signal dominates without weak ones being ignored. Strengths are the configured
weights; the model signal is weight x (1 - P(alive)).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal


class ReasonCode(StrEnum):
    MODEL_DROPOUT = "model_dropout"
    NO_LOGIN = "no_login"
    ENGAGEMENT_DROP = "engagement_drop"
    SPEND_OFF_BASELINE = "spend_off_baseline"
    PURCHASES_OFF_BASELINE = "purchases_off_baseline"
    LOGINS_OFF_BASELINE = "logins_off_baseline"
    OPEN_COMPLAINTS = "open_complaints"
    SLA_BREACH = "sla_breach"
    DETRACTOR_NPS = "detractor_nps"


@dataclass(frozen=True)
class ChurnReason:
    code: ReasonCode
    message: str
    numbers: dict[str, float] = field(default_factory=dict)
    contribution: float = 0.0  # strength s_i of this signal in the noisy-or


@dataclass(frozen=True)
class ChurnSignals:
    """Inputs. Ratios are last-30-days rate / preceding-90-days baseline rate (0.4 = down 60 %);
    None means unknown and disables the rules that need it."""

    p_alive: float | None = None
    days_since_login: float | None = None
    purchase_ratio: float | None = None
    login_ratio: float | None = None
    spend_ratio: float | None = None
    open_complaints: int = 0
    sla_breached: bool = False
    last_nps: int | None = None


@dataclass(frozen=True)
class ChurnConfig:
    model_weight: float = 1.0
    no_login_days: float = 90.0
    no_login_weight: float = 0.35
    purchase_drop: float = 0.50  # purchase frequency down at least 50 % ...
    login_drop: float = 0.30  # ... and logins down at least 30 %
    engagement_drop_weight: float = 0.40
    metric_deviation: float = 0.15  # a key metric down at least 15 % from baseline
    metric_deviation_weight: float = 0.10
    complaint_weight: float = 0.25
    sla_breach_weight: float = 0.30
    detractor_nps_max: int = 6  # NPS detractors are 0..6
    detractor_weight: float = 0.30
    # model reason is listed only when it says something; it always counts towards the score
    model_reason_min: float = 0.05


@dataclass(frozen=True)
class ChurnAssessment:
    risk: float
    reasons: tuple[ChurnReason, ...]  # strongest first

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(r.code.value for r in self.reasons)


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


# One rule per signal: each reads the signals and the configuration and gives the reasons it finds (none, one, or
# for the metric deviations up to three). Order is the order of the reason lines before ranking.
Rule = Callable[[ChurnSignals, ChurnConfig], Iterator[ChurnReason]]


def _model_dropout(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    if s.p_alive is None:
        return
    dropout = min(max(1.0 - s.p_alive, 0.0), 1.0)
    strength = cfg.model_weight * dropout
    if strength >= cfg.model_reason_min:
        yield ChurnReason(
            ReasonCode.MODEL_DROPOUT,
            f"purchase model gives {_pct(dropout)} probability the customer has already left",
            {"p_alive": s.p_alive},
            strength,
        )
    elif strength > 0:
        # counted silently: a 2 % model risk is not worth a reason line
        yield ChurnReason(ReasonCode.MODEL_DROPOUT, "", {"p_alive": s.p_alive}, strength)


def _no_login(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    if s.days_since_login is not None and s.days_since_login >= cfg.no_login_days:
        yield ChurnReason(
            ReasonCode.NO_LOGIN,
            f"no login for {s.days_since_login:.0f} days (threshold {cfg.no_login_days:.0f})",
            {"days_since_login": s.days_since_login, "threshold_days": cfg.no_login_days},
            cfg.no_login_weight,
        )


def _engagement_drop(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    if (
        s.purchase_ratio is not None
        and s.login_ratio is not None
        and s.purchase_ratio <= 1.0 - cfg.purchase_drop
        and s.login_ratio <= 1.0 - cfg.login_drop
    ):
        yield ChurnReason(
            ReasonCode.ENGAGEMENT_DROP,
            f"purchases down {_pct(1 - s.purchase_ratio)} and logins down {_pct(1 - s.login_ratio)} "
            "against the customer's own 90-day baseline",
            {
                "purchase_ratio": s.purchase_ratio,
                "login_ratio": s.login_ratio,
                "purchase_drop_threshold": cfg.purchase_drop,
                "login_drop_threshold": cfg.login_drop,
            },
            cfg.engagement_drop_weight,
        )


def _off_baseline(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    # Only drops count: a customer spending 30 % more than usual is not at risk because of it.
    metrics = (
        (ReasonCode.SPEND_OFF_BASELINE, "spend", s.spend_ratio),
        (ReasonCode.PURCHASES_OFF_BASELINE, "purchase frequency", s.purchase_ratio),
        (ReasonCode.LOGINS_OFF_BASELINE, "login frequency", s.login_ratio),
    )
    for code, label, ratio in metrics:
        if ratio is not None and ratio <= 1.0 - cfg.metric_deviation:
            yield ChurnReason(
                code,
                f"{label} down {_pct(1 - ratio)} against baseline (threshold {_pct(cfg.metric_deviation)})",
                {"ratio": ratio, "deviation": 1.0 - ratio, "threshold": cfg.metric_deviation},
                cfg.metric_deviation_weight,
            )


def _open_complaints(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    if s.open_complaints > 0:
        yield ChurnReason(
            ReasonCode.OPEN_COMPLAINTS,
            f"{s.open_complaints} open complaint(s)",
            {"open_complaints": float(s.open_complaints)},
            cfg.complaint_weight,
        )


def _sla_breach(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    if s.sla_breached:
        yield ChurnReason(ReasonCode.SLA_BREACH, "a support ticket breached its SLA", {}, cfg.sla_breach_weight)


def _detractor_nps(s: ChurnSignals, cfg: ChurnConfig) -> Iterator[ChurnReason]:
    if s.last_nps is not None and s.last_nps <= cfg.detractor_nps_max:
        yield ChurnReason(
            ReasonCode.DETRACTOR_NPS,
            f"last NPS answer {s.last_nps} (detractor, <= {cfg.detractor_nps_max})",
            {"nps": float(s.last_nps), "threshold": float(cfg.detractor_nps_max)},
            cfg.detractor_weight,
        )


RULES: tuple[Rule, ...] = (
    _model_dropout,
    _no_login,
    _engagement_drop,
    _off_baseline,
    _open_complaints,
    _sla_breach,
    _detractor_nps,
)


def churn_reasons(signals: ChurnSignals, config: ChurnConfig | None = None) -> list[ChurnReason]:
    cfg = config or ChurnConfig()
    return [reason for rule in RULES for reason in rule(signals, cfg)]


def combine(strengths: Sequence[float]) -> float:
    """Noisy-or of strengths clipped to [0, 1]."""
    survive = 1.0
    for s in strengths:
        survive *= 1.0 - min(max(s, 0.0), 1.0)
    return 1.0 - survive


def assess_churn(signals: ChurnSignals, config: ChurnConfig | None = None) -> ChurnAssessment:
    reasons = churn_reasons(signals, config)
    risk = combine([r.contribution for r in reasons])
    shown = [r for r in reasons if r.message]
    # stable order for identical inputs: strongest first, code breaks ties
    shown.sort(key=lambda r: (-r.contribution, r.code.value))
    return ChurnAssessment(risk=risk, reasons=tuple(shown))


Direction = Literal["up", "down"]


@dataclass(frozen=True)
class LevelCrossing:
    level: float
    direction: Direction


def crossed_levels(old: float | None, new: float, levels: Sequence[float] = (0.5, 0.8)) -> tuple[LevelCrossing, ...]:
    """Levels crossed moving from ``old`` to ``new``. Reaching a level exactly counts as crossing
    up (old < L <= new); falling below it counts as down (new < L <= old). A first score (old None)
    is treated as coming from 0, so a customer who starts high is reported once."""
    start = 0.0 if old is None else old
    out: list[LevelCrossing] = []
    for level in sorted(levels):
        if start < level <= new:
            out.append(LevelCrossing(level, "up"))
        elif new < level <= start:
            out.append(LevelCrossing(level, "down"))
    return tuple(out)
