"""What every service's error answer must be: RFC 9457 problem+json naming exactly the fields at fault."""

from __future__ import annotations

from typing import Any

from httpx import Response

from libs.common.problems import PROBLEM_JSON


def assert_problem(response: Response, status: int, *fields: str) -> list[dict[str, Any]]:
    """The answer is a `status` problem; with `fields`, its `errors[]` names exactly those, in order.

    Returns the errors so a caller can look at their codes and messages too.
    """
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body = response.json()
    assert body["status"] == status and body["title"], body
    errors: list[dict[str, Any]] = body.get("errors", [])
    if fields:
        assert [error["field"] for error in errors] == list(fields), body
    return errors
