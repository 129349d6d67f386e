"""Validation errors as every service answers them (problem+json `errors[]`)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from libs.common.events import Identifier, LongText
from libs.common.problems import nul_in_url, validation_errors


class TicketIn(BaseModel):
    customer_id: Identifier
    text: LongText = ""


def test_a_nul_character_is_named_and_explained_in_any_service_body() -> None:
    with pytest.raises(ValidationError) as caught:
        TicketIn(customer_id="c-1", text="broken\x00")
    assert validation_errors(caught.value.errors()) == [
        {"field": "text", "message": "must not contain the NUL character (U+0000)", "code": "nul_character"}
    ]
    with pytest.raises(ValidationError) as caught:
        TicketIn(customer_id="")
    assert [(e["field"], e["code"]) for e in validation_errors(caught.value.errors())] == [
        ("customer_id", "string_too_short")
    ]


def test_a_nul_character_in_the_path_or_a_query_parameter_is_named() -> None:
    nul = {"message": "must not contain the NUL character (U+0000)", "code": "nul_character"}
    assert nul_in_url("/v1/customers/c-1", b"email=a%40b.c&limit=5") == []
    assert nul_in_url("/v1/customers/c-\x001", b"") == [{"field": "path", **nul}]
    assert nul_in_url("/v1/customers", b"limit=5&email=a%00b") == [{"field": "query.email", **nul}]
