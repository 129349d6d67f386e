from __future__ import annotations

import pytest

from services.scoring.domain.churn import (
    ChurnConfig,
    ChurnReason,
    ChurnSignals,
    LevelCrossing,
    ReasonCode,
    assess_churn,
    combine,
    crossed_levels,
)


def codes(signals: ChurnSignals) -> set[ReasonCode]:
    return {r.code for r in assess_churn(signals).reasons}


def reason(signals: ChurnSignals, code: ReasonCode) -> ChurnReason:
    matches = [r for r in assess_churn(signals).reasons if r.code is code]
    assert len(matches) == 1, f"expected exactly one {code}"
    return matches[0]


def test_no_signals_no_risk() -> None:
    a = assess_churn(ChurnSignals())
    assert a.risk == 0.0 and a.reasons == ()
    healthy = ChurnSignals(
        p_alive=0.99, days_since_login=3, purchase_ratio=1.1, login_ratio=1.0, spend_ratio=1.3, last_nps=9
    )
    a = assess_churn(healthy)
    assert a.risk == pytest.approx(0.01)
    assert a.reasons == ()  # 1 % model risk is counted but not worth a reason


def test_model_dropout_component() -> None:
    a = assess_churn(ChurnSignals(p_alive=0.3))
    assert a.risk == pytest.approx(0.7)
    r = reason(ChurnSignals(p_alive=0.3), ReasonCode.MODEL_DROPOUT)
    assert r.numbers == {"p_alive": 0.3}
    assert "70 %" in r.message


def test_no_login_rule() -> None:
    assert ReasonCode.NO_LOGIN not in codes(ChurnSignals(days_since_login=89.9))
    r = reason(ChurnSignals(days_since_login=120), ReasonCode.NO_LOGIN)
    assert r.numbers == {"days_since_login": 120, "threshold_days": 90.0}
    assert "120 days" in r.message
    assert assess_churn(ChurnSignals(days_since_login=90)).risk == pytest.approx(0.35)


def test_engagement_drop_needs_both_purchases_and_logins_down() -> None:
    r = reason(ChurnSignals(purchase_ratio=0.4, login_ratio=0.7), ReasonCode.ENGAGEMENT_DROP)
    assert r.numbers["purchase_ratio"] == 0.4 and r.numbers["login_ratio"] == 0.7
    assert "purchases down 60 %" in r.message and "logins down 30 %" in r.message
    assert ReasonCode.ENGAGEMENT_DROP not in codes(ChurnSignals(purchase_ratio=0.4, login_ratio=0.75))
    assert ReasonCode.ENGAGEMENT_DROP not in codes(ChurnSignals(purchase_ratio=0.55, login_ratio=0.2))
    assert ReasonCode.ENGAGEMENT_DROP not in codes(ChurnSignals(purchase_ratio=0.1))


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("spend_ratio", ReasonCode.SPEND_OFF_BASELINE),
        ("purchase_ratio", ReasonCode.PURCHASES_OFF_BASELINE),
        ("login_ratio", ReasonCode.LOGINS_OFF_BASELINE),
    ],
)
def test_key_metric_off_baseline(field: str, code: ReasonCode) -> None:
    r = reason(ChurnSignals(**{field: 0.8}), code)  # type: ignore[arg-type]
    assert r.numbers["ratio"] == 0.8
    assert r.numbers["deviation"] == pytest.approx(0.2)
    assert "down 20 %" in r.message
    assert code in codes(ChurnSignals(**{field: 0.85}))  # type: ignore[arg-type]
    assert code not in codes(ChurnSignals(**{field: 0.86}))  # type: ignore[arg-type]
    assert code not in codes(ChurnSignals(**{field: 1.5}))  # type: ignore[arg-type]


def test_complaints_and_sla_breach() -> None:
    r = reason(ChurnSignals(open_complaints=2), ReasonCode.OPEN_COMPLAINTS)
    assert r.numbers == {"open_complaints": 2.0}
    assert ReasonCode.OPEN_COMPLAINTS not in codes(ChurnSignals(open_complaints=0))
    assert reason(ChurnSignals(sla_breached=True), ReasonCode.SLA_BREACH).contribution == 0.3
    both = assess_churn(ChurnSignals(open_complaints=1, sla_breached=True))
    assert both.risk == pytest.approx(1 - 0.75 * 0.7)


def test_detractor_nps() -> None:
    r = reason(ChurnSignals(last_nps=6), ReasonCode.DETRACTOR_NPS)
    assert r.numbers == {"nps": 6.0, "threshold": 6.0}
    assert ReasonCode.DETRACTOR_NPS in codes(ChurnSignals(last_nps=0))
    assert ReasonCode.DETRACTOR_NPS not in codes(ChurnSignals(last_nps=7))


def test_combination_is_noisy_or_ordered_and_deterministic() -> None:
    signals = ChurnSignals(
        p_alive=0.6, days_since_login=100, purchase_ratio=0.3, login_ratio=0.5, open_complaints=1, last_nps=3
    )
    a = assess_churn(signals)
    strengths = [r.contribution for r in a.reasons]
    assert a.risk == pytest.approx(combine(strengths))
    assert 0.0 < a.risk < 1.0
    assert strengths == sorted(strengths, reverse=True)
    assert assess_churn(signals) == a
    # engagement drop and model dropout both have strength 0.4: the code breaks the tie
    assert a.reason_codes[:2] == ("engagement_drop", "model_dropout")


def test_adding_a_signal_never_lowers_risk() -> None:
    base = ChurnSignals(p_alive=0.8, days_since_login=95)
    more = ChurnSignals(p_alive=0.8, days_since_login=95, last_nps=2)
    assert assess_churn(more).risk > assess_churn(base).risk


def test_weights_are_configurable() -> None:
    cfg = ChurnConfig(no_login_weight=0.9, no_login_days=30)
    assert assess_churn(ChurnSignals(days_since_login=31), cfg).risk == pytest.approx(0.9)


def test_combine_clips_and_handles_empty() -> None:
    assert combine([]) == 0.0
    assert combine([1.5]) == 1.0
    assert combine([-0.2, 0.5]) == 0.5


def test_crossed_levels() -> None:
    assert crossed_levels(0.3, 0.6) == (LevelCrossing(0.5, "up"),)
    assert crossed_levels(0.3, 0.9) == (LevelCrossing(0.5, "up"), LevelCrossing(0.8, "up"))
    assert crossed_levels(0.85, 0.4) == (LevelCrossing(0.5, "down"), LevelCrossing(0.8, "down"))
    assert crossed_levels(0.6, 0.7) == ()
    assert crossed_levels(0.4, 0.5) == (LevelCrossing(0.5, "up"),)  # reaching a level counts
    assert crossed_levels(0.5, 0.5) == ()
    assert crossed_levels(0.5, 0.49) == (LevelCrossing(0.5, "down"),)
    assert crossed_levels(None, 0.82) == (LevelCrossing(0.5, "up"), LevelCrossing(0.8, "up"))
    assert crossed_levels(None, 0.1) == ()
    assert crossed_levels(0.1, 0.35, levels=(0.3, 0.2)) == (LevelCrossing(0.2, "up"), LevelCrossing(0.3, "up"))
