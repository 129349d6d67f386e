"""Pure pieces of the customer pages: the reader's language, unsubscribe tokens, preference choices as events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from libs.common.pages import Catalog, negotiate_locale
from libs.common.unsubscribe import (
    CHANNELS,
    ExpiredUnsubscribeToken,
    UnsubscribeTokenError,
    issue_unsubscribe_token,
    verify_unsubscribe_token,
)
from services.ingest.domain.incoming import validate_python
from services.ingest.domain.preferences import choices_from_form, consent_events, one_click_submission

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = "unit-secret"


@pytest.mark.parametrize(
    ("explicit", "header", "expected"),
    [
        ("zh", "en-US,en;q=0.9", "zh"),  # the link's locale wins
        ("zh_Hans_CN", None, "zh"),
        (None, "fr-FR, zh-TW;q=0.8, en;q=0.5", "zh"),
        (None, "en;q=0.2, zh;q=0.1", "en"),
        (None, "zh;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
        (None, "de, fr", "en"),
        (None, None, "en"),
        ("klingon", "zh-CN", "zh"),
        (None, "zh;q=abc, en;q=0.5", "en"),
    ],
)
def test_locale_negotiation(explicit: str | None, header: str | None, expected: str) -> None:
    assert negotiate_locale(explicit, header) == expected


@given(st.text(max_size=200))
def test_any_accept_language_header_gives_a_supported_locale(header: str) -> None:
    assert negotiate_locale(None, header) in ("en", "zh")


def test_a_catalog_needs_every_text_in_english() -> None:
    with pytest.raises(ValueError, match="only_zh"):
        Catalog({"en": {"a": "A"}, "zh": {"a": "甲", "only_zh": "乙"}})
    assert Catalog({"en": {"a": "A", "b": "B"}, "zh": {"a": "甲"}}).for_locale("zh") == {"a": "甲", "b": "B"}


@given(
    customer=st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s),
    channel=st.sampled_from(CHANNELS),
    campaign=st.text(min_size=1, max_size=40),
)
def test_unsubscribe_tokens_round_trip_and_any_change_is_refused(customer: str, channel: str, campaign: str) -> None:
    token = issue_unsubscribe_token(SECRET, customer, channel, campaign, NOW + timedelta(days=1))
    claims = verify_unsubscribe_token(SECRET, token, NOW)
    assert (claims.customer_id, claims.channel, claims.campaign_id) == (customer, channel, campaign)
    with pytest.raises(UnsubscribeTokenError):
        verify_unsubscribe_token("another-secret", token, NOW)
    payload, signature = token.split(".")
    flipped = ("A" if payload[0] != "A" else "B") + payload[1:]
    with pytest.raises(UnsubscribeTokenError):
        verify_unsubscribe_token(SECRET, f"{flipped}.{signature}", NOW)


def test_unsubscribe_token_expiry_and_shape() -> None:
    token = issue_unsubscribe_token(SECRET, "c-1", "sms", "cmp", NOW)
    with pytest.raises(ExpiredUnsubscribeToken):
        verify_unsubscribe_token(SECRET, token, NOW)
    for bad in ("", "abc", "a.b.c", ".x", "é.x"):
        with pytest.raises(UnsubscribeTokenError):
            verify_unsubscribe_token(SECRET, bad, NOW)
    with pytest.raises(ValueError):
        issue_unsubscribe_token(SECRET, "c-1", "pigeon", "cmp", NOW)


def test_form_choices() -> None:
    claims = verify_unsubscribe_token(
        SECRET, issue_unsubscribe_token(SECRET, "c-1", "sms", "cmp", NOW + timedelta(1)), NOW
    )
    assert choices_from_form({"action": ["this"]}, claims) == {"sms": False}
    assert choices_from_form({"action": ["all"]}, claims) == dict.fromkeys(CHANNELS, False)
    saved = choices_from_form(
        {"action": ["save"], "channel.email": ["allow"], "channel.sms": ["keep"], "channel.push": ["stop"]}, claims
    )
    assert saved == {"email": True, "push": False}
    assert choices_from_form({"action": ["save"], "channel.email": ["maybe"]}, claims) == {}
    assert choices_from_form({}, claims) == {}


def test_consent_events_are_valid_upstream_events_with_ids_per_submission() -> None:
    claims = verify_unsubscribe_token(
        SECRET, issue_unsubscribe_token(SECRET, "c-1", "sms", "cmp", NOW + timedelta(1)), NOW
    )
    changes = {"sms": False, "email": True}
    first = consent_events(claims, changes, "form:abc", NOW)
    assert [e["id"] for e in first] == [e["id"] for e in consent_events(claims, changes, "form:abc", NOW)]
    assert {e["id"] for e in first}.isdisjoint(e["id"] for e in consent_events(claims, changes, "form:def", NOW))
    for raw in first:
        valid = validate_python(raw, now=NOW)
        assert valid.type == "consent.changed" and valid.customer_id == "c-1"
    assert one_click_submission("t", NOW) == one_click_submission("t", NOW + timedelta(minutes=30))
    assert one_click_submission("t", NOW) != one_click_submission("t", NOW + timedelta(hours=1))
