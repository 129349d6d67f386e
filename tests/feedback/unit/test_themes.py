from services.feedback.domain.themes import tokenize, top_themes

ZH = [
    "物流太慢了，快递三天都没到",
    "客服态度很好，但是物流很慢",
    "物流速度慢，包装破损了",
    "包装破损，客服处理很及时",
]
EN = [
    "Delivery was late and the package was damaged",
    "Late delivery again, very disappointed",
    "Great support, but the delivery was late",
    "The package arrived damaged",
]


def test_chinese_tokens_drop_single_chars_and_stopwords() -> None:
    tokens = tokenize("客服态度很好，但是物流很慢")
    assert "物流" in tokens and "客服" in tokens
    assert "但是" not in tokens
    assert all(len(t) >= 2 for t in tokens)


def test_english_tokens_lowercase_without_stopwords() -> None:
    assert tokenize("The Delivery was LATE!") == ["delivery", "late"]


def test_chinese_top_themes() -> None:
    themes = top_themes(ZH, k=3)
    assert themes[0].term == "物流"
    assert themes[0].count == 3 and themes[0].documents == 3
    assert {"物流", "客服"} <= {t.term for t in themes} or {"物流", "包装"} <= {t.term for t in themes}


def test_english_top_themes_deterministic() -> None:
    themes = top_themes(EN, k=2)
    assert [t.term for t in themes] == ["delivery", "late"]  # equal score -> alphabetical
    assert themes[0].score == themes[1].score > 0
    assert top_themes(EN, k=2) == themes


def test_mixed_corpus_and_edge_cases() -> None:
    terms = [t.term for t in top_themes(ZH + EN, k=4)]
    assert "物流" in terms and "delivery" in terms
    assert top_themes([], k=5) == []
    assert top_themes(["the and of", "   "], k=5) == []
    assert top_themes(EN, k=0) == []
