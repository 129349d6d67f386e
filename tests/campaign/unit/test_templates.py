from __future__ import annotations

import pytest

from services.campaign.domain.templates import placeholders, render, validate_template


def test_render_substitutes_profile_fields() -> None:
    text = render(
        "Hi {name}, {points} points as a {tier} member; new in {favourite_category}!",
        {"name": "Ada", "points": 120, "tier": "gold", "favourite_category": "books"},
    )
    assert text == "Hi Ada, 120 points as a gold member; new in books!"


def test_render_defaults_for_missing_or_blank_values() -> None:
    assert render("Hi {name}, {points} points", {"name": "  ", "points": None}) == "Hi there, 0 points"


def test_render_keeps_escaped_braces_and_ignores_extra_fields() -> None:
    assert render("{{name}} {name}", {"name": "Bo", "password": "x"}) == "{name} Bo"


@pytest.mark.parametrize("template", ["{unknown}", "{name.__class__}", "{name[0]}", "{name:>10}", "{}", "{name"])
def test_unsafe_or_unknown_templates_are_rejected(template: str) -> None:
    with pytest.raises(ValueError, match=r"placeholder|malformed"):
        validate_template(template)


def test_placeholders_in_order() -> None:
    assert placeholders("{tier} {name} {tier}") == ["tier", "name", "tier"]
