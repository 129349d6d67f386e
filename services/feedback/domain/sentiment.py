"""A deliberately tiny lexicon sentiment for English and Chinese comments.

Text score = (positive hits - negative hits) / (all hits), in [-1, 1], 0 when
no lexicon word is found. In English a negator flips the next lexicon word
("not good", "no problem"). Chinese is matched longest-first on the raw text, so
"不满意" is one negative hit and its "满意" is not counted again.

When a rating is present it is blended in, and a clearly bad rating wins:
an NPS detractor (0-6) or a CSAT of 1-2 is always negative, whatever the
text says - a polite comment on a 3/10 is still an unhappy customer.
Combined score = mean of text and rating scores (rating alone if the text has
no hits). Labels: score > 0.2 positive, < -0.2 negative, otherwise neutral.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from services.feedback.domain.nps import (
    DETRACTOR_MAX,
    PROMOTER_MIN,
    validate_csat_score,
    validate_nps_score,
)

Label = Literal["positive", "neutral", "negative"]

THRESHOLD = 0.2

EN_POSITIVE = frozenset(
    "good great excellent amazing awesome love loved like liked happy helpful fast quick "
    "friendly easy recommend perfect satisfied nice thanks thank best smooth".split()
)
EN_NEGATIVE = frozenset(
    "bad terrible awful horrible hate hated slow late broken damaged rude poor worst "
    "disappointed disappointing problem issue useless expensive refund cancel angry "
    "unhappy wrong missing never difficult".split()
)
EN_NEGATORS = frozenset("not no never don't didn't isn't wasn't aren't won't can't cannot hardly".split())

ZH_POSITIVE = tuple(
    "非常满意 满意 很好 不错 喜欢 好评 推荐 快速 及时 热情 耐心 专业 方便 谢谢 感谢 完美 优秀 给力 划算".split()
)
ZH_NEGATIVE = tuple(
    "不满意 不好 不行 不会再 差评 很差 太差 失望 垃圾 投诉 退款 退货 破损 损坏 太慢 很慢 慢 延迟 没到 态度差 "
    "生气 糟糕 问题 贵 错误".split()
)
_ZH_LEXICON = sorted(
    [(w, 1) for w in ZH_POSITIVE] + [(w, -1) for w in ZH_NEGATIVE],
    key=lambda item: -len(item[0]),
)
_EN_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?]")
_CLAUSE_BREAKS = frozenset(".,;:!?")


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: Label
    score: float  # combined, in [-1, 1]
    text_score: float
    positive_hits: int
    negative_hits: int


def _english_hits(text: str) -> tuple[int, int]:
    pos = neg = 0
    # A negator flips the next lexicon word within two words ("not very good"),
    # but not past punctuation or a lexicon word it already flipped.
    negation_left = 0
    for token in _EN_TOKEN.findall(text.lower()):
        if token in _CLAUSE_BREAKS:
            negation_left = 0
            continue
        if token in EN_NEGATORS:
            negation_left = 2
            continue
        polarity = 1 if token in EN_POSITIVE else -1 if token in EN_NEGATIVE else 0
        if polarity == 0:
            negation_left = max(0, negation_left - 1)
            continue
        if negation_left:
            polarity = -polarity
            negation_left = 0
        if polarity > 0:
            pos += 1
        else:
            neg += 1
    return pos, neg


def _chinese_hits(text: str) -> tuple[int, int]:
    pos = neg = 0
    remaining = text
    for word, polarity in _ZH_LEXICON:
        found = remaining.count(word)
        if found:
            # Blank out matches so shorter entries inside them are not recounted.
            remaining = remaining.replace(word, " ")
            if polarity > 0:
                pos += found
            else:
                neg += found
    return pos, neg


def text_sentiment(text: str) -> tuple[float, int, int]:
    en_pos, en_neg = _english_hits(text)
    zh_pos, zh_neg = _chinese_hits(text)
    pos, neg = en_pos + zh_pos, en_neg + zh_neg
    score = 0.0 if pos + neg == 0 else (pos - neg) / (pos + neg)
    return score, pos, neg


def _rating_score(nps: int | None, csat: int | None) -> float | None:
    parts: list[float] = []
    if nps is not None:
        validate_nps_score(nps)
        parts.append(1.0 if nps >= PROMOTER_MIN else -1.0 if nps <= DETRACTOR_MAX else 0.0)
    if csat is not None:
        validate_csat_score(csat)
        parts.append((csat - 3) / 2)
    return sum(parts) / len(parts) if parts else None


def _label(score: float) -> Label:
    if score > THRESHOLD:
        return "positive"
    if score < -THRESHOLD:
        return "negative"
    return "neutral"


def analyze(text: str | None, nps: int | None = None, csat: int | None = None) -> Sentiment:
    text_score, pos, neg = text_sentiment(text or "")
    rating = _rating_score(nps, csat)
    if rating is None:
        score = text_score
    elif pos + neg == 0:
        score = rating
    else:
        score = (text_score + rating) / 2
    label = _label(score)
    if (nps is not None and nps <= DETRACTOR_MAX) or (csat is not None and csat <= 2):
        label = "negative"
        score = min(score, -THRESHOLD - 0.01)
    return Sentiment(label, round(score, 4), round(text_score, 4), pos, neg)
