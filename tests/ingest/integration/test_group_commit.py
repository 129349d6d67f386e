"""Group commit: concurrent requests share inserts and publishes, yet each gets its own outcomes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from services.ingest.domain.incoming import ValidEvent, validate_python
from services.ingest.handlers import group_commit
from services.ingest.handlers.accept import Acceptance, accept_items
from services.ingest.handlers.deps import IngestDeps
from services.ingest.handlers.group_commit import GroupCommitter
from tests.conftest import Isolation
from tests.ingest.conftest import SHOP, event, read_topic


async def test_concurrent_posts_with_duplicates_in_flight(
    app: FastAPI, client: AsyncClient, isolated: Isolation, monkeypatch: pytest.MonkeyPatch
) -> None:
    committer = app.state.ingest.committer
    assert isinstance(committer, GroupCommitter)
    flushed: list[int] = []

    async def counting(
        ctx: IngestDeps, items: Sequence[tuple[ValidEvent, str]], progress: list[str] | None = None
    ) -> list[Acceptance]:
        flushed.append(len(items))
        return await accept_items(ctx, items, progress)

    with monkeypatch.context() as patch:
        patch.setattr(group_commit, "accept_items", counting)
        # 40 distinct ids, each posted 3 times concurrently (singles and a small batch), all in flight at once.
        ids = [f"g-{i}" for i in range(40)]
        singles = [
            client.post("/v1/events", json=event(i, customer=f"c-{n % 7}"), headers=SHOP) for n, i in enumerate(ids)
        ]
        singles += [client.post("/v1/events", json=event(i), headers=SHOP) for i in ids]
        batch = client.post(
            "/v1/events:batch", json={"events": [event(i) for i in ids[:10]] + [event("g-new")]}, headers=SHOP
        )
        answers = await asyncio.gather(*singles, batch)

    outcomes: Counter[tuple[str, str]] = Counter()
    for response in answers[:-1]:
        body = response.json()
        assert response.status_code == (202 if body["status"] == "accepted" else 200)
        outcomes[(body["id"], body["status"])] += 1
    batch_body = answers[-1].json()
    for result in batch_body["results"]:
        outcomes[(result["id"], result["status"])] += 1
    # Every id accepted exactly once across all requests; every other copy a duplicate.
    for i in [*ids, "g-new"]:
        copies = 3 if i in ids[:10] else (2 if i in ids else 1)
        assert outcomes[(i, "accepted")] == 1, i
        assert outcomes[(i, "duplicate")] == copies - 1, i
    assert batch_body["results"][-1] == {"index": 10, "id": "g-new", "status": "accepted"}
    # Requests really were grouped: fewer flushes than requests.
    assert sum(flushed) == 40 * 2 + 11 and len(flushed) < 81

    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=41)
    assert sorted(e.id for e in seen) == sorted([*ids, "g-new"])
    assert {e.source for e in seen} == {"shop"}


async def test_a_failing_group_is_retried_request_by_request(
    app: FastAPI, client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request the database rejects must not fail the others that shared its group."""

    async def picky(
        ctx: IngestDeps, items: Sequence[tuple[ValidEvent, str]], progress: list[str] | None = None
    ) -> list[Acceptance]:
        if any(e.id == "poison" for e, _ in items):
            raise asyncpg.DataError("rejected by the database")
        return await accept_items(ctx, items, progress)

    with monkeypatch.context() as patch:
        patch.setattr(group_commit, "accept_items", picky)
        good = [client.post("/v1/events", json=event(f"ok-{i}"), headers=SHOP) for i in range(5)]
        poison = client.post("/v1/events", json=event("poison"), headers=SHOP)
        answers = await asyncio.gather(*good, poison, return_exceptions=True)
    assert [getattr(a, "status_code", a) for a in answers[:5]] == [202] * 5
    failed = answers[5]
    assert isinstance(failed, asyncpg.DataError) or getattr(failed, "status_code", None) == 500


@pytest.mark.parametrize("window_s", [0.0, 0.002])
async def test_committer_resolves_each_request_in_order(window_s: float, app: FastAPI, client: AsyncClient) -> None:
    ctx = app.state.ingest
    committer = GroupCommitter(ctx, window_s=window_s, max_items=5, max_inflight=2)

    def valid(i: str) -> ValidEvent:
        return validate_python(event(i))

    results = await asyncio.gather(
        committer.submit([valid("o-1"), valid("o-2"), valid("o-1")], "shop"),
        committer.submit([valid("o-2")], "shop"),
        committer.submit([valid("o-3")] * 4, "shop"),  # larger than what is left of a group
        committer.submit([], "shop"),
    )
    await committer.aclose()
    statuses = [[o.status for o in r] for r in results]
    # Requests in different groups commit concurrently: which copy of an id wins is a race, but
    # exactly one copy of each id is accepted and every other copy is reported as a duplicate.
    assert statuses[0][0] == "accepted" and statuses[0][2] == "duplicate"
    assert sorted([statuses[0][1], statuses[1][0]]) == ["accepted", "duplicate"]
    assert sorted(statuses[2]) == ["accepted", "duplicate", "duplicate", "duplicate"]
    assert statuses[3] == []
    ids = [o.event_id for r in results for o in r]
    assert ids == ["o-1", "o-2", "o-1", "o-2", "o-3", "o-3", "o-3", "o-3"]
