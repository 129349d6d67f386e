"""RFC 9457 problem details for every error a service answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.common.events import NO_NUL_MESSAGE, NO_NUL_PATTERN

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """Raise from any route: becomes a problem+json answer."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.errors = errors
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    type: str = "about:blank",
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


def invalid_request(errors: list[dict[str, Any]], *, instance: str) -> JSONResponse:
    """422 for request fields that failed their checks; `errors` as `validation_errors` describes them."""
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem_response(422, "Invalid request", detail, instance=instance, errors=errors)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
            type=exc.type,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_request(validation_errors(exc.errors()), instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            exc.status_code,
            _title(exc.status_code),
            str(exc.detail) if exc.detail else None,
            instance=request.url.path,
            headers=dict(exc.headers) if exc.headers else None,
        )


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
