from datetime import UTC, datetime

import pytest

from services.feedback.domain.errors import InvalidValue
from services.feedback.domain.nps import (
    SurveyAnswer,
    classify_nps,
    compute_csat,
    compute_nps,
    csat_report,
    nps_report,
    period_bucket,
    validate_csat_score,
)


def test_nps_fixed_example() -> None:
    scores = [9, 10, 9, 10, 9, 7, 8, 7, 3, 6]  # 5 promoters, 3 passives, 2 detractors
    result = compute_nps(scores)
    assert (result.promoters, result.passives, result.detractors, result.total) == (5, 3, 2, 10)
    assert result.nps == 30.0


def test_nps_boundaries_and_extremes() -> None:
    assert [classify_nps(s) for s in (0, 6, 7, 8, 9, 10)] == [
        "detractor",
        "detractor",
        "passive",
        "passive",
        "promoter",
        "promoter",
    ]
    assert compute_nps([10, 10]).nps == 100.0
    assert compute_nps([0, 1]).nps == -100.0
    assert compute_nps([]).nps is None


def test_csat_percentage_and_mean() -> None:
    result = compute_csat([5, 4, 3, 2, 1, 5, 4, 4])
    assert result.satisfied == 5
    assert result.csat == 62.5
    assert result.mean == 3.5
    assert compute_csat([]).csat is None


@pytest.mark.parametrize("bad", [11, -1, True, 3.5, "9"])
def test_nps_score_validation_names_field(bad: object) -> None:
    with pytest.raises(InvalidValue) as exc:
        compute_nps([9, bad], field="data.nps")  # type: ignore[list-item]
    assert exc.value.field == "data.nps"


def test_csat_range() -> None:
    with pytest.raises(InvalidValue) as exc:
        validate_csat_score(0)
    assert exc.value.field == "csat"
    with pytest.raises(InvalidValue):
        SurveyAnswer("c-1", datetime(2026, 1, 1, tzinfo=UTC))


def test_period_buckets() -> None:
    at = datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert period_bucket(at, "day") == "2026-11-20"
    assert period_bucket(at, "week") == "2026-W47"
    assert period_bucket(at, "month") == "2026-11"


def test_grouped_reports() -> None:
    d1 = datetime(2026, 11, 2, tzinfo=UTC)
    d2 = datetime(2026, 12, 5, tzinfo=UTC)
    answers = [
        SurveyAnswer("c1", d1, nps=10, tier="high"),
        SurveyAnswer("c2", d1, nps=2, tier="high"),
        SurveyAnswer("c3", d2, nps=9, tier="low"),
        SurveyAnswer("c4", d2, csat=5, tier="low"),
    ]
    by_tier = nps_report(answers, "tier")
    assert by_tier["high"].nps == 0.0
    assert by_tier["low"].nps == 100.0 and by_tier["low"].total == 1
    by_month = nps_report(answers, "month")
    assert list(by_month) == ["2026-11", "2026-12"]
    assert csat_report(answers, "month") == {"2026-12": compute_csat([5])}
