"""Whether the broker still holds what this service published: a restarted in-memory broker has forgotten it all.

Each service keeps a marker topic of its own on the broker. A broker that does not have it is new to the service
(the embedded broker after any restart, or a first deployment): the service then re-sends what it published within
its redelivery window and creates the marker. A durable Kafka keeps the marker, so nothing is re-sent there.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from libs.common.settings import Settings
from libs.common.topics import qualified

MARKER_PREFIX = "retain.publisher."
ADMIN_TIMEOUT_S = 5.0


def marker_topic(settings: Settings) -> str:
    return qualified(settings.topic_prefix, MARKER_PREFIX + settings.service)


async def broker_remembers(settings: Settings) -> bool:
    """Raises (KafkaError, OSError, TimeoutError) when the broker cannot be asked: that answers nothing."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), ADMIN_TIMEOUT_S)
        topics = await asyncio.wait_for(admin.list_topics(), ADMIN_TIMEOUT_S)
        return marker_topic(settings) in topics
    finally:
        await admin.close()


async def remember(settings: Settings) -> None:
    """Called only once the re-sending is durably queued: a crash before it means asking again next time."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), ADMIN_TIMEOUT_S)
        try:
            await asyncio.wait_for(
                admin.create_topics([NewTopic(marker_topic(settings), 1, settings.topic_replication)]), ADMIN_TIMEOUT_S
            )
        except TopicAlreadyExistsError:
            pass  # another replica of the service was first
    finally:
        await admin.close()
