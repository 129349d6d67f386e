"""The producer is idempotent wherever the broker allows it; only a broker without it (the embedded one) runs
without, and only when the setting leaves the choice open."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaError

from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher, ensure_topics
from libs.common.topics import CUSTOMER_EVENTS
from tests.conftest import Isolation


def _event() -> CloudEvent:
    return CloudEvent(id="idem-1", source="test", type="login", subject="c-1", time=datetime(2026, 11, 20, tzinfo=UTC))


async def test_unset_asks_for_idempotence_and_falls_back_on_a_broker_without_it(isolated: Isolation) -> None:
    settings = isolated.settings("idem")
    assert settings.kafka_idempotence is None
    await ensure_topics(settings)
    publisher = Publisher(settings)
    assert publisher.idempotent
    try:
        await publisher.start()
        assert not publisher.idempotent
        await publisher.publish(publisher.topic(CUSTOMER_EVENTS), _event())
    finally:
        await publisher.stop()


async def test_demanded_idempotence_refuses_a_broker_without_it(isolated: Isolation) -> None:
    publisher = Publisher(isolated.settings("idem", kafka_idempotence=True))
    try:
        with pytest.raises(KafkaError):
            await publisher.start()
        assert not publisher.started
    finally:
        await publisher.stop()


async def test_disabled_idempotence_never_asks(isolated: Isolation) -> None:
    publisher = Publisher(isolated.settings("idem", kafka_idempotence=False))
    assert not publisher.idempotent
    try:
        await publisher.start()
        assert publisher.started
    finally:
        await publisher.stop()
