"""Consumer-group lag, read from the broker: how the supervisor knows every consumer has drained."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from libs.common.topics import qualified


async def total_lag(bootstrap: str, prefix: str, groups: dict[str, tuple[str, ...]]) -> int:
    """`groups` maps a consumer group (without prefix) to its base topic names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await probe.start()
    try:
        lag = 0
        for group, topics in groups.items():
            partitions = [
                TopicPartition(qualified(prefix, topic), p)
                for topic in topics
                for p in sorted(probe.partitions_for_topic(qualified(prefix, topic)) or ())
            ]
            if not partitions:
                continue
            ends = await probe.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(qualified(prefix, group), partitions=partitions)
            for tp in partitions:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else 0
                lag += max(0, ends[tp] - position)
        return lag
    finally:
        await probe.stop()
        await admin.close()
