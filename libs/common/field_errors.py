"""Naming the field an error is about, the way a caller recognises it: no web framework, so domain code may use it.

`libs.common.problems` turns these into RFC 9457 answers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from libs.common.events import NO_NUL_MESSAGE, NO_NUL_PATTERN


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """`("body", "data", "items", 0, "price")` -> `data.items[0].price`: the name a caller recognises."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "body"


def message_and_code(err: Any) -> tuple[str, str]:
    """A pydantic error's message and code, with our own patterns explained instead of quoted."""
    code = err.get("type", "")
    if code == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == NO_NUL_PATTERN:
        return NO_NUL_MESSAGE, "nul_character"
    return err.get("msg", ""), code


def nul_in_url(path: str, query_string: bytes) -> list[dict[str, Any]]:
    """Errors for a (decoded) path or query parameter holding U+0000, which PostgreSQL text cannot store.

    Checked once for every route, ahead of routing: path and query parameters are plain strings in the routes.
    """
    nul = {"message": NO_NUL_MESSAGE, "code": "nul_character"}
    errors = [{"field": "path", **nul}] if "\x00" in path else []
    if b"%00" in query_string or b"\x00" in query_string:
        for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                errors.append({"field": f"query.{name.replace(chr(0), '')}", **nul})
    return errors


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    described = []
    for err in errors:
        message, code = message_and_code(err)
        described.append({"field": field_path(tuple(err.get("loc", ()))), "message": message, "code": code})
    return described
