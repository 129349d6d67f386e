"""Top themes of a set of comments by TF-IDF keywords (Chinese and English).

Chinese runs are segmented with jieba; everything else is split by a regex.
Single-character Chinese tokens and stopwords are dropped because they are
almost never a theme ("了", "很"). Each comment is one document; a term's
theme score is its TF-IDF summed over all comments, so a complaint repeated
in many comments still ranks high even though its IDF shrinks. Ties are broken
by the term itself, so results are deterministic.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")

EN_STOPWORDS = frozenset(
    """
    a about after again all also am an and any are as at be been before being but by can
    could did do does doing don't for from get got had has have having he her here him his
    how i i'm if in into is it it's its just me more most my no nor not now of off on once
    only or other our out over own really same she should so some still such than that the
    their them then there these they this those through to too under until up very was we
    were what when where which while who why will with would you your yours ve ll re
    """.split()
)
ZH_STOPWORDS = frozenset(
    """
    我们 你们 他们 她们 它们 这个 那个 这些 那些 一个 一些 没有 什么 怎么 非常 特别
    因为 所以 但是 而且 就是 还是 可以 已经 觉得 真的 感觉 一下 这次 还有 然后 如果
    虽然 这样 那样 自己 不是 一直 现在 时候 比较 有点 一点 希望 问题
    """.split()
)
STOPWORDS = EN_STOPWORDS | ZH_STOPWORDS

_jieba_lock = threading.Lock()
_jieba_cut: Callable[[str], list[str]] | None = None


def _cut_chinese(text: str) -> list[str]:
    # jieba loads a ~5 MB dictionary and logs at DEBUG on import; do that only
    # when the first Chinese comment shows up, and keep it quiet.
    global _jieba_cut
    if _jieba_cut is None:
        with _jieba_lock:
            if _jieba_cut is None:
                logging.getLogger("jieba").setLevel(logging.WARNING)
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_cut = jieba.lcut
    assert _jieba_cut is not None
    return _jieba_cut(text)


def tokenize(text: str) -> list[str]:
    """Content words of ``text``, in order; lowercased, stopwords removed."""
    tokens: list[str] = []
    lowered = text.lower()
    position = 0
    for match in _CJK_RUN.finditer(lowered):
        tokens.extend(_latin_tokens(lowered[position : match.start()]))
        tokens.extend(t for t in _cut_chinese(match.group()) if len(t) >= 2 and t not in STOPWORDS)
        position = match.end()
    tokens.extend(_latin_tokens(lowered[position:]))
    return tokens


def _latin_tokens(text: str) -> list[str]:
    return [w for w in _LATIN_WORD.findall(text) if len(w) >= 2 and w not in STOPWORDS]


@dataclass(frozen=True, slots=True)
class Theme:
    term: str
    score: float
    count: int  # occurrences across all comments
    documents: int  # comments mentioning it


def top_themes(comments: Iterable[str], k: int = 10) -> list[Theme]:
    docs = [tokenize(c) for c in comments if c and c.strip()]
    return top_themes_from_tokens(docs, k)


def top_themes_from_tokens(docs: Sequence[Sequence[str]], k: int = 10) -> list[Theme]:
    if k <= 0:
        return []
    docs = [d for d in docs if d]
    n = len(docs)
    doc_freq: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for doc in docs:
        doc_freq.update(set(doc))
        counts.update(doc)
    scores: dict[str, float] = {}
    for doc in docs:
        tf = Counter(doc)
        length = len(doc)
        for term, c in tf.items():
            # Smoothed IDF (as in scikit-learn) keeps terms found in every
            # comment above zero: for themes, ubiquity is signal, not noise.
            idf = math.log((1 + n) / (1 + doc_freq[term])) + 1.0
            scores[term] = scores.get(term, 0.0) + (c / length) * idf
    ranked = sorted(scores.items(), key=lambda item: (-round(item[1], 12), item[0]))
    return [Theme(term, round(score, 6), counts[term], doc_freq[term]) for term, score in ranked[:k]]
