"""Message templates: `{placeholder}` substitution over a fixed set of profile fields.

Templates are written by marketing staff through the HTTP API, so they are untrusted input.
`str.format` would allow `{name.__class__}` or `{points[0]}` to reach into Python objects;
we only accept bare names from `PLACEHOLDERS`, without conversions or format specs, and
substitute them ourselves.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

# A customer without a known name still gets a friendly greeting rather than "Hi None".
DEFAULTS: Mapping[str, str] = {
    "name": "there",
    "favourite_category": "our latest products",
    "tier": "valued",
    "points": "0",
}
PLACEHOLDERS: frozenset[str] = frozenset(DEFAULTS)

_FORMATTER = string.Formatter()


def placeholders(template: str) -> list[str]:
    """Return the placeholder names in order; raise ValueError on anything beyond bare names."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:  # unbalanced braces
        raise ValueError(f"malformed template: {exc}") from exc
    names: list[str] = []
    for _literal, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name == "" or not field_name.isidentifier():
            raise ValueError(f"placeholder {{{field_name}}} must be a bare name")
        if format_spec or conversion:
            raise ValueError(f"placeholder {{{field_name}}} must not have a conversion or format spec")
        names.append(field_name)
    return names


def validate_template(template: str) -> str:
    """Return the template unchanged if it only uses known placeholders, else raise ValueError."""
    unknown = sorted(set(placeholders(template)) - PLACEHOLDERS)
    if unknown:
        allowed = ", ".join(f"{{{name}}}" for name in sorted(PLACEHOLDERS))
        shown = ", ".join(f"{{{name}}}" for name in unknown)
        raise ValueError(f"unknown placeholder(s) {shown}; allowed: {allowed}")
    return template


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def render(template: str, profile: Mapping[str, object]) -> str:
    """Substitute profile fields; missing or blank values fall back to `DEFAULTS`."""
    validate_template(template)
    parts: list[str] = []
    for literal, field_name, _spec, _conv in _FORMATTER.parse(template):
        parts.append(literal)
        if field_name is not None:
            parts.append(_text(profile.get(field_name)) or DEFAULTS[field_name])
    return "".join(parts)
