from datetime import UTC, datetime, timedelta

import pytest

from services.feedback.domain.survey_tokens import (
    ExpiredToken,
    ForgedToken,
    MalformedToken,
    WrongSurvey,
    issue_token,
    verify_token,
)

SECRET = "s3cret"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=7)


def test_round_trip_exposes_claims_and_nonce() -> None:
    token = issue_token(SECRET, "sv-1", "c-42", EXPIRES)
    claims = verify_token(SECRET, token, NOW, expected_survey_id="sv-1")
    assert (claims.survey_id, claims.customer_id, claims.expires_at) == ("sv-1", "c-42", EXPIRES)
    assert len(claims.nonce) >= 16
    assert "=" not in token and "+" not in token and "/" not in token


def test_each_token_is_unique() -> None:
    tokens = {issue_token(SECRET, "sv-1", "c-42", EXPIRES) for _ in range(20)}
    assert len(tokens) == 20
    assert len({verify_token(SECRET, t, NOW).nonce for t in tokens}) == 20


def test_wrong_secret_and_tampered_payload_are_forged() -> None:
    token = issue_token(SECRET, "sv-1", "c-42", EXPIRES, nonce="n1")
    with pytest.raises(ForgedToken):
        verify_token("other", token, NOW)
    other = issue_token(SECRET, "sv-1", "c-99", EXPIRES, nonce="n1")
    spliced = other.split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(ForgedToken):
        verify_token(SECRET, spliced, NOW)


def test_expired() -> None:
    token = issue_token(SECRET, "sv-1", "c-42", EXPIRES)
    assert verify_token(SECRET, token, EXPIRES - timedelta(seconds=1)).customer_id == "c-42"
    with pytest.raises(ExpiredToken):
        verify_token(SECRET, token, EXPIRES)


def test_wrong_survey() -> None:
    token = issue_token(SECRET, "sv-1", "c-42", EXPIRES)
    with pytest.raises(WrongSurvey):
        verify_token(SECRET, token, NOW, expected_survey_id="sv-2")


@pytest.mark.parametrize("bad", ["", "abc", "a.b.c", ".sig", "payload.", "p@yl%ad.s!g", "ä.b"])
def test_malformed(bad: str) -> None:
    with pytest.raises(MalformedToken) as exc:
        verify_token(SECRET, bad, NOW)
    assert exc.value.field == "token"
