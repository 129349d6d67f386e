"""The outbox-not-draining alert reads retain_outbox_backlog: while the broker refuses what the relay publishes,
the gauge shows the rows waiting, not the zero it showed when the outbox last drained."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from libs.common.envelope import CloudEvent
from libs.common.topics import PROFILE_CHANGES
from tests.conftest import Isolation
from tests.integration.test_outbox_relay import RelayRig, rig

__all__ = ["rig"]  # the relay fixture, shared with the relay's own tests


def backlog() -> float | None:
    return REGISTRY.get_sample_value("retain_outbox_backlog", {"service": "relaytest"})


async def test_the_backlog_gauge_counts_rows_the_relay_cannot_publish(isolated: Isolation, rig: RelayRig) -> None:
    assert await rig.relay.relay_once() == 0
    assert backlog() == 0
    events = [CloudEvent(f"b{n}", "t", "profile.updated", "c", datetime.now(UTC), {}) for n in range(4)]
    async with rig.sessions() as session, session.begin():
        await rig.outbox.add(session, PROFILE_CHANGES, *events)
    await rig.relay.publisher.stop()  # publishing fails from now on
    running = asyncio.create_task(rig.relay.run())
    try:
        for _ in range(100):
            if backlog() == len(events):
                break
            await asyncio.sleep(0.05)
        assert backlog() == len(events)
        assert await rig.outbox_rows() == len(events)
    finally:
        rig.relay.stop()
        await running
