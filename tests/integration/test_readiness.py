"""/readyz means the service would handle an event posted now: its consumers are in their groups."""

from __future__ import annotations

from httpx import ASGITransport, AsyncClient

from services.campaign.bootstrap import create_app
from tests.conftest import Isolation
from tests.waiting import eventually


async def test_ready_only_once_every_consumer_has_joined_its_group(isolated: Isolation) -> None:
    app = create_app(isolated.settings("campaign"))
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            first = await client.get("/readyz")
            # The group join takes seconds, so the first answer comes before it.
            if not runtime.consumers_joined():
                assert first.status_code == 503
                assert first.json()["consumers"] == "joining"

            async def ready() -> bool:
                return (await client.get("/readyz")).status_code == 200

            await eventually(ready, timeout_s=60)
            answer = (await client.get("/readyz")).json()
            assert answer == {"status": "ready", "database": "ok", "broker": "ok", "consumers": "ok"}
            assert all(loop.joined.is_set() for loop in runtime.consumers)
            assert len(runtime.consumers) == len(app.state.definition.subscriptions) >= 4


async def test_a_member_without_partitions_is_still_ready(isolated: Isolation) -> None:
    """More members than partitions: the one left without a share has joined all the same."""
    settings = isolated.settings("campaign", topic_partitions=1)
    first, second = create_app(settings), create_app(settings)
    async with first.router.lifespan_context(first), second.router.lifespan_context(second):
        runtimes = [first.state.runtime, second.state.runtime]

        async def both_joined() -> bool:
            return all(runtime.consumers_joined() for runtime in runtimes)

        await eventually(both_joined, timeout_s=90)
        idle = [
            loop
            for runtime in runtimes
            for loop in runtime.consumers
            if loop.joined.is_set() and not loop.assigned.is_set()
        ]
        # Each group has one partition per topic and two members: one of them holds nothing.
        assert idle
        for runtime in runtimes:
            ready, body = await runtime.readiness()
            assert ready and body["consumers"] == "ok"
