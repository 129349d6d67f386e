"""Fuzzing every service's HTTP API from its own OpenAPI description (schemathesis), over the real processes.

For each operation schemathesis generates requests from the schema (valid and invalid parameters and bodies); every
answer must not be a server error and, when its status is documented, must match the documented schema. The seed is
fixed (derandomized) and the examples per operation bounded, so a run is reproducible and takes a couple of minutes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, Case
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Err

from retain_cli.supervisor import SERVICES
from tests.conftest import ADMIN_KEY
from tests.platform.conftest import Platform

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
EXAMPLES_PER_OPERATION = int(os.environ.get("RETAIN_FUZZ_EXAMPLES", "12"))
_databases = itertools.count()
Operation = APIOperation[Any, Any, Any, Any]


def fuzz_operation(operation: Operation, base_url: str) -> tuple[int, list[str]]:
    """Calls one operation with generated requests; returns the number of calls and the failures."""
    failures: list[str] = []
    calls = 0

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: Case[Operation]) -> None:
        nonlocal calls
        response = case.call(base_url=base_url, headers=AUTH, timeout=30)
        calls += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except Exception as exc:  # collected, so that one run reports every operation that fails
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:600]}")

    call()
    return calls, failures


def fuzz_operations(base_url: str, spec: dict[str, Any]) -> tuple[int, list[str]]:
    """Runs every operation of `spec` against `base_url`; returns the number of calls and the failures."""
    failures: list[str] = []
    calls = 0
    for result in schemathesis.openapi.from_dict(spec).get_all_operations():
        if isinstance(result, Err):
            failures.append(f"an operation's description is invalid: {result.err()}")
            continue
        made, failed = fuzz_operation(result.ok(), base_url)
        calls += made
        failures += failed
    return calls, failures


@pytest.mark.parametrize("service", SERVICES)
async def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(
    shared_platform: Platform, service: str
) -> None:
    base_url = shared_platform.url(service)
    async with httpx.AsyncClient(timeout=10) as client:
        spec = (await client.get(f"{base_url}/openapi.json")).json()
    calls, failures = await asyncio.to_thread(fuzz_operations, base_url, spec)
    assert calls >= len(spec["paths"]), "every operation was called"
    assert failures == [], "\n".join(failures[:20])
