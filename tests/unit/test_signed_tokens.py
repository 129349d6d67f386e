"""The signed links' shared envelope: what a tampered, foreign or odd token turns into, for both kinds of link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.common import signed_tokens
from libs.common.unsubscribe import UnsubscribeTokenError, issue_unsubscribe_token, verify_unsubscribe_token
from services.feedback.domain import survey_tokens

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SECRET = "s3cret"


def test_a_payload_comes_back_only_under_its_secret_and_version() -> None:
    token = signed_tokens.sign_token(SECRET, {"v": 1, "x": "ü"})
    assert signed_tokens.open_token(SECRET, token, 1) == {"v": 1, "x": "ü"}
    with pytest.raises(signed_tokens.ForgedToken):
        signed_tokens.open_token("other", token, 1)
    with pytest.raises(signed_tokens.MalformedToken, match="unsupported"):
        signed_tokens.open_token(SECRET, token, 2)
    payload, signature = token.split(".")
    for bad in ("", "a.b.c", f"{payload}.", f".{signature}", f"{payload}é.{signature}", f"{payload}.a", 7):
        with pytest.raises(signed_tokens.MalformedToken):
            signed_tokens.open_token(SECRET, bad, 1)
    with pytest.raises(ValueError, match="empty"):
        signed_tokens.sign_token("", {"v": 1})


@pytest.mark.parametrize("expiry", [10**20, -(10**20), True, "1", 1.5])
def test_an_expiry_we_could_not_have_issued_is_a_bad_link_not_a_crash(expiry: object) -> None:
    unsubscribe = signed_tokens.sign_token(SECRET, {"v": 1, "c": "c-1", "ch": "email", "m": "m-1", "e": expiry})
    with pytest.raises(UnsubscribeTokenError, match="expiry"):
        verify_unsubscribe_token(SECRET, unsubscribe, NOW)
    survey = signed_tokens.sign_token(SECRET, {"v": 1, "s": "s-1", "c": "c-1", "n": "n", "e": expiry})
    with pytest.raises(survey_tokens.MalformedToken, match="expiry"):
        survey_tokens.verify_token(SECRET, survey, NOW)


def test_each_link_keeps_its_own_errors() -> None:
    unsubscribe = issue_unsubscribe_token(SECRET, "c-1", "email", "m-1", NOW + timedelta(days=1))
    assert verify_unsubscribe_token(SECRET, unsubscribe, NOW).customer_id == "c-1"
    with pytest.raises(UnsubscribeTokenError, match="signature"):
        verify_unsubscribe_token("other", unsubscribe, NOW)
    survey = survey_tokens.issue_token(SECRET, "s-1", "c-1", NOW + timedelta(days=1))
    with pytest.raises(survey_tokens.ForgedToken):
        survey_tokens.verify_token("other", survey, NOW)
    with pytest.raises(survey_tokens.MalformedToken):
        survey_tokens.verify_token(SECRET, unsubscribe, NOW)  # a genuine link of the other kind
