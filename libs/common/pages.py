"""Server-rendered HTML pages: Jinja2 templates, the reader's language, and HTML forms.

Pages are for people: customers following a signed link from a message, and internal teams in the console. They
work without JavaScript (plain forms, POST then a rendered answer), so a phone's simplest browser is enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

Locale = Literal["en", "zh"]
LOCALES: tuple[Locale, ...] = ("en", "zh")
DEFAULT_LOCALE: Locale = "en"
COMMON_TEMPLATES = Path(__file__).parent / "templates"
# A form is a handful of short fields; anything bigger is not one of ours.
MAX_FORM_BYTES = 64 * 1024


def locale_of(tag: str | None) -> Locale | None:
    """`zh`, `zh-CN`, `zh_Hans_CN` -> zh; `en-GB` -> en; anything else -> None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LOCALES else None


def negotiate_locale(explicit: str | None, accept_language: str | None) -> Locale:
    """The language the link names (the customer's own locale) wins; else the browser's preference (RFC 9110
    Accept-Language with q-values); else English."""
    chosen = locale_of(explicit)
    if chosen is not None:
        return chosen
    ranked: list[tuple[float, int, Locale]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        candidate = locale_of(tag)
        if candidate is not None and quality > 0:
            ranked.append((-quality, position, candidate))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


def request_locale(request: Request, explicit: str | None = None) -> Locale:
    return negotiate_locale(explicit or request.query_params.get("lang"), request.headers.get("accept-language"))


class Catalog:
    """Texts of one set of pages in every locale; a key missing in one locale falls back to English."""

    def __init__(self, texts: Mapping[Locale, Mapping[str, str]]) -> None:
        missing = set(texts[DEFAULT_LOCALE]) ^ {key for locale in texts.values() for key in locale}
        if missing:
            raise ValueError(f"texts not in the {DEFAULT_LOCALE} catalog: {sorted(missing)}")
        self.texts = texts

    def for_locale(self, locale: Locale) -> dict[str, str]:
        return {**self.texts[DEFAULT_LOCALE], **self.texts.get(locale, {})}


class Pages:
    """A service's templates (its own directory first, then the shared ones) rendered into HTML responses."""

    def __init__(self, directories: Iterable[Path]) -> None:
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader([*directories, COMMON_TEMPLATES]),
            autoescape=True,  # every value shown comes from a database or a request
            undefined=jinja2.StrictUndefined,  # a misspelt name fails the test that renders it
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, **context: Any) -> str:
        return self.environment.get_template(name).render(**context)

    def response(
        self, name: str, status_code: int = 200, headers: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        # Pages carry tokens and customer data: never cached, never framed, no referrer leaking the token.
        safe_headers = {
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'",
            **(headers or {}),
        }
        return HTMLResponse(self.render(name, **context), status_code=status_code, headers=safe_headers)


class FormTooLarge(ValueError):
    pass


async def form_fields(request: Request) -> dict[str, list[str]]:
    """A form body as field -> values: `application/x-www-form-urlencoded` (what a plain HTML form posts), or
    `multipart/form-data` (which RFC 8058 also allows mail providers to use for one-click unsubscribes)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise FormTooLarge(f"form larger than {MAX_FORM_BYTES} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart_fields(content_type, body)
    fields: dict[str, list[str]] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        fields.setdefault(name, []).append(value)
    return fields


def _multipart_fields(content_type: str, body: bytes) -> dict[str, list[str]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields: dict[str, list[str]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and part.get_filename() is None:
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
            fields.setdefault(name, []).append(text)
    return fields


def first(fields: Mapping[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None
