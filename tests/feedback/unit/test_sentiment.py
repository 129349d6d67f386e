import pytest

from services.feedback.domain.sentiment import analyze


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Great support, very helpful, thanks!", "positive"),
        ("Delivery was late and the box was damaged", "negative"),
        ("not good at all", "negative"),
        ("no problem, thanks", "positive"),
        ("I ordered a lamp", "neutral"),
        ("客服很耐心，非常满意", "positive"),
        ("物流太慢，包装破损，不满意", "negative"),
    ],
)
def test_text_labels(text: str, label: str) -> None:
    assert analyze(text).label == label


def test_chinese_longest_match_first() -> None:
    result = analyze("不满意")
    assert (result.positive_hits, result.negative_hits) == (0, 1)


def test_detractor_is_always_negative() -> None:
    result = analyze("服务很好", nps=3)
    assert result.text_score > 0
    assert result.label == "negative" and result.score < 0


def test_rating_without_text_and_blend() -> None:
    assert analyze(None, nps=10).label == "positive"
    assert analyze("", csat=3).label == "neutral"
    assert analyze(None, csat=1).label == "negative"
    assert analyze("terrible", nps=8).score == -0.5
