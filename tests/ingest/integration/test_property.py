"""Property-based: whatever JSON arrives at the event routes, ingest never answers 5xx.

Inputs are the documented examples of every type, mutated (fields replaced by arbitrary JSON, removed,
added, nested) plus arbitrary JSON, sent in every accepted media type. Hypothesis runs in a worker
thread and drives the in-process app on the test's event loop.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libs.common.events import UPSTREAM_EVENT_TYPES
from services.ingest.domain.examples import flat_example, structured_example
from tests.ingest.conftest import SHOP

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
KEYS = ["id", "type", "customer_id", "time", "data", "subject", "specversion", "source", "amount", "items", "x"]


@st.composite
def mutated_event(draw: st.DrawFn) -> Any:
    make = draw(st.sampled_from([flat_example, structured_example]))
    # Deep copy: the examples are shared module data.
    event: dict[str, Any] = copy.deepcopy(
        make(draw(st.sampled_from(list(UPSTREAM_EVENT_TYPES))), draw(st.text(max_size=130)))
    )
    for _ in range(draw(st.integers(0, 3))):
        target = event if draw(st.booleans()) else event.setdefault("data", {})
        if not isinstance(target, dict):
            break
        key = draw(st.sampled_from([*target.keys(), *KEYS]))
        if draw(st.booleans()):
            target[key] = draw(JSON)
        else:
            target.pop(key, None)
    return event


BODIES = st.one_of(mutated_event(), JSON)
MEDIA = st.sampled_from(["application/json", "application/cloudevents+json", "application/cloudevents-batch+json"])


async def test_no_input_makes_ingest_answer_5xx(client: AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    def post(path: str, body: bytes, media: str) -> int:
        headers = {**SHOP, "content-type": media}
        response = asyncio.run_coroutine_threadsafe(client.post(path, content=body, headers=headers), loop).result(30)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", response.text
        return response.status_code

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=BODIES, media=MEDIA, batch=st.lists(BODIES, max_size=5), raw=st.booleans())
    def never_5xx(body: Any, media: str, batch: list[Any], raw: bool) -> None:
        single = orjson.dumps(body) if not raw else orjson.dumps(body)[:-1]  # sometimes truncated JSON
        batch_body = orjson.dumps(batch if media.endswith("batch+json") else {"events": batch})
        statuses = [post("/v1/events", single, media), post("/v1/events:batch", batch_body, media)]
        assert all(status < 500 for status in statuses), statuses
        seen.extend(statuses)

    await asyncio.to_thread(never_5xx)
    # The run exercised both outcomes, not only rejections.
    assert {202, 422} <= set(seen)
