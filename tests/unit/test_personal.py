"""Sealing personal fields with per-customer keys, and blind indexes (libs.common.personal)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given
from hypothesis import strategies as st

from libs.common import personal
from libs.common.envelope import CloudEvent
from libs.common.personal import UnwrappedKey

INDEX_KEY = os.urandom(32)
UPSERT = {"name": "Eve Example", "email": "Eve@Example.com", "phone": "+1 415 555 0100", "region": "CA"}


def sealed_upsert(key: UnwrappedKey, customer: str = "c-1") -> dict[str, object]:
    return personal.seal_data("customer.upserted", customer, UPSERT, key.key_id, key.data_key, INDEX_KEY)


def new_key() -> UnwrappedKey:
    return UnwrappedKey(personal.new_key_id(), personal.new_data_key())


def test_a_sealed_event_holds_no_personal_field_in_clear_and_opens_to_what_was_posted() -> None:
    key = new_key()
    sealed = sealed_upsert(key)
    text = repr(sealed)
    # Whole values: a short digit run like "415" turns up by chance in hex indexes and base64 ciphertexts.
    for secret in ("Eve Example", "Eve@Example.com", "eve@example.com", "+1 415 555 0100", "+14155550100"):
        assert secret not in text
    assert sealed["region"] == "CA"  # not personal: stays readable for every consumer
    assert sealed[personal.SEALED] == {
        "v": personal.SCHEME_VERSION,
        "key_id": key.key_id,
        "fields": ["name", "email", "phone"],
        "index": {
            "email": personal.blind_index(INDEX_KEY, "email", "eve@example.com"),
            "phone": personal.blind_index(INDEX_KEY, "phone", "+14155550100"),
        },
    }
    assert personal.open_data("c-1", sealed, key) == UPSERT


@given(st.text(max_size=200))
def test_any_text_round_trips(value: str) -> None:
    key = new_key()
    token = personal.seal_value(key.data_key, "c-1", "comment", value)
    assert token.startswith(personal.PREFIX)
    assert personal.open_value(key.data_key, "c-1", "comment", token) == value


def test_a_value_moved_to_another_customer_or_field_does_not_open() -> None:
    key = new_key()
    token = personal.seal_value(key.data_key, "c-1", "email", "eve@example.com")
    with pytest.raises(InvalidTag):
        personal.open_value(key.data_key, "c-2", "email", token)
    with pytest.raises(InvalidTag):
        personal.open_value(key.data_key, "c-1", "name", token)


def test_without_the_key_or_with_a_newer_one_the_personal_fields_are_gone() -> None:
    key = new_key()
    sealed = sealed_upsert(key)
    assert personal.open_data("c-1", sealed, None) == {"region": "CA"}
    # The customer came back after an erasure: a new key, under which the old copies stay unreadable.
    assert personal.open_data("c-1", sealed, new_key()) == {"region": "CA"}
    forged = UnwrappedKey(key.key_id, personal.new_data_key())
    assert personal.open_data("c-1", sealed, forged) == {"region": "CA"}


def test_events_without_personal_fields_are_left_alone() -> None:
    key = new_key()
    purchase = {"order_id": "o-1", "amount": 10.0, "currency": "USD"}
    assert personal.seal_data("purchase", "c-1", purchase, key.key_id, key.data_key, INDEX_KEY) is purchase
    assert personal.open_data("c-1", purchase, None) is purchase
    ticket = {"ticket_id": "t-1", "text": "my address is 1 Main St"}
    sealed = personal.seal_data("ticket.opened", "c-1", ticket, key.key_id, key.data_key, INDEX_KEY)
    assert "Main" not in repr(sealed)
    assert personal.open_data("c-1", sealed, key) == ticket


def test_blind_indexes_match_the_same_person_however_written_and_need_the_key() -> None:
    same = {personal.blind_index(INDEX_KEY, "email", e) for e in ("eve@example.com", " EVE@example.COM ")}
    assert len(same) == 1
    phones = {personal.blind_index(INDEX_KEY, "phone", p) for p in ("+1 (415) 555-0100", "+14155550100")}
    assert len(phones) == 1
    assert personal.blind_index(INDEX_KEY, "email", "eve@example.com") != personal.blind_index(
        os.urandom(32), "email", "eve@example.com"
    )
    assert personal.blind_index(INDEX_KEY, "email", "eve@example.com") != personal.blind_index(
        INDEX_KEY, "email", "adam@example.com"
    )


def test_the_master_key_wraps_data_keys_per_customer() -> None:
    wrapper = personal.MasterKeyWrapper(os.urandom(32))
    data_key = personal.new_data_key()
    wrapped = wrapper.wrap(data_key, "c-1")
    assert data_key not in wrapped
    assert wrapper.unwrap(wrapped, "c-1") == data_key
    with pytest.raises(InvalidTag):
        wrapper.unwrap(wrapped, "c-2")
    with pytest.raises(InvalidTag):
        personal.MasterKeyWrapper(os.urandom(32)).unwrap(wrapped, "c-1")
    with pytest.raises(ValueError, match="32 bytes"):
        personal.MasterKeyWrapper(b"short")


def test_a_consumer_without_use_for_personal_data_gets_the_event_without_it() -> None:
    key = new_key()
    data = {"metrics": {"email": "eve@example.com", "name": "Eve Example", "region": "CA"}, "changed": ["region"]}
    sealed = personal.seal_data("profile.updated", "c-1", data, key.key_id, key.data_key, INDEX_KEY)
    assert "eve@example.com" not in repr(sealed) and sealed["metrics"]["region"] == "CA"
    assert personal.open_data("c-1", sealed, key) == data
    event = CloudEvent("e-1", "test", "profile.updated", "c-1", datetime.now(UTC), sealed)
    personal.strip_personal([event])
    assert event.data == {"metrics": {"email": None, "name": None, "region": "CA"}, "changed": ["region"]}
