"""`retain dlq list|show|replay`: inspect dead-lettered messages and re-drive them after a fix.

Replay re-publishes the original record (key, value, CloudEvents headers) to the topic it was dead-lettered from.
That is safe to repeat and safe for every other consumer of the topic: each consumer group keeps an inbox of the
ce_ids it processed, so the group that failed handles the event once and every group that already had it (or a
second replay) counts a duplicate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from libs.common.kafka import client_options
from libs.common.settings import Settings
from libs.common.topics import ALL_TOPICS, DLQ_SUFFIX, dlq_of, qualified

T = TypeVar("T")
DLQ_HEADER_PREFIX = "dlq_"
# Where a replayed record came from; kept on the record so a second dead-lettering still shows its history.
REPLAYED_FROM_HEADER = "replayed_from_dlq"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @property
    def ref(self) -> str:
        """How the commands name one dead letter: `<dlq topic>:<partition>:<offset>`."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        for key, raw in self.headers:
            if key == name:
                return raw.decode("utf-8", errors="replace")
        return ""

    @property
    def event_id(self) -> str:
        return self.header("ce_id")

    @property
    def source_topic(self) -> str:
        return self.header("dlq_source_topic") or self.topic.removesuffix(DLQ_SUFFIX)

    def original_headers(self) -> list[tuple[str, bytes]]:
        headers = [(key, raw) for key, raw in self.headers if not key.startswith(DLQ_HEADER_PREFIX)]
        headers = [(key, raw) for key, raw in headers if key != REPLAYED_FROM_HEADER]
        return [*headers, (REPLAYED_FROM_HEADER, self.ref.encode())]

    def summary(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "id": self.event_id,
            "type": self.header("ce_type"),
            "consumer": self.header("dlq_consumer"),
            "source": f"{self.source_topic}:{self.header('dlq_source_partition')}:{self.header('dlq_source_offset')}",
            "attempts": self.header("dlq_attempts"),
            "error": self.header("dlq_error"),
        }


def kafka_options(bootstrap: str) -> dict[str, Any]:
    """The services' own Kafka security settings (RETAIN_KAFKA_*), for the broker the operator names."""
    return {**client_options(Settings()), "bootstrap_servers": bootstrap}


def dlq_topics(prefix: str, bases: Iterable[str] = ALL_TOPICS) -> list[str]:
    return [qualified(prefix, dlq_of(base)) for base in bases]


async def read_dead_letters(bootstrap: str, topics: Sequence[str]) -> list[DeadLetter]:
    """Every record the dead-letter topics hold, read without a consumer group (nothing is committed)."""
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    try:
        await consumer.start()
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        pending = {tp for tp in partitions if ends[tp] > starts[tp]}
        for tp in pending:
            consumer.seek(tp, starts[tp])
        letters: list[DeadLetter] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                letters += [
                    DeadLetter(tp.topic, tp.partition, r.offset, r.key or b"", r.value or b"", tuple(r.headers or ()))
                    for r in records
                    if r.offset < ends[tp]
                ]
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return sorted(letters, key=lambda letter: (letter.topic, letter.partition, letter.offset))
    finally:
        await consumer.stop()


async def dead_letter_counts(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    """Records each dead-letter topic holds (end minus beginning offset, over its partitions)."""
    consumer = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    try:
        await consumer.start()
        counts = dict.fromkeys(topics, 0)
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if partitions:
            ends = await consumer.end_offsets(partitions)
            starts = await consumer.beginning_offsets(partitions)
            for tp in partitions:
                counts[tp.topic] += ends[tp] - starts[tp]
        return counts
    finally:
        await consumer.stop()


async def replay(bootstrap: str, letters: Sequence[DeadLetter]) -> int:
    """Re-publishes each letter to its source topic; returns how many the broker acknowledged."""
    producer = AIOKafkaProducer(**kafka_options(bootstrap), acks="all")
    try:
        await producer.start()
        deliveries = [
            await producer.send(
                letter.source_topic, value=letter.value, key=letter.key, headers=letter.original_headers()
            )
            for letter in letters
        ]
        await asyncio.gather(*deliveries)
        return len(deliveries)
    finally:
        await producer.stop()


def select(
    letters: Sequence[DeadLetter],
    *,
    refs: Sequence[str] = (),
    event_ids: Sequence[str] = (),
    consumer: str | None = None,
) -> list[DeadLetter]:
    """Letters matching every filter given; the same event dead-lettered twice (two failed replays) counts once."""
    chosen = [
        letter
        for letter in letters
        if (not refs or letter.ref in refs)
        and (not event_ids or letter.event_id in event_ids)
        and (consumer is None or letter.header("dlq_consumer") == consumer)
    ]
    unique: dict[tuple[str, str], DeadLetter] = {}
    for letter in chosen:
        identity = (letter.source_topic, letter.event_id or letter.ref)
        unique.setdefault(identity, letter)
    return list(unique.values())


def add_dlq_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser("dlq", help="inspect and replay dead-lettered messages")
    actions = dlq.add_subparsers(dest="dlq_command", required=True)

    listing = actions.add_parser("list", help="one line per dead-lettered message")
    _broker_arguments(listing)
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    listing.set_defaults(handler=list_command)

    show = actions.add_parser("show", help="headers and body of dead-lettered messages")
    _broker_arguments(show)
    show.add_argument("refs", nargs="*", metavar="TOPIC:PARTITION:OFFSET")
    show.add_argument("--id", dest="event_ids", action="append", default=[], help="by ce_id (repeatable)")
    show.set_defaults(handler=show_command)

    again = actions.add_parser("replay", help="re-publish dead-lettered messages to their source topic")
    _broker_arguments(again)
    again.add_argument("refs", nargs="*", metavar="TOPIC:PARTITION:OFFSET")
    again.add_argument("--id", dest="event_ids", action="append", default=[], help="by ce_id (repeatable)")
    again.add_argument("--consumer", help="only what this consumer dead-lettered, e.g. profile.customer-events")
    again.add_argument("--all", action="store_true", help="every dead letter of the chosen topics")
    again.set_defaults(handler=replay_command)


def _broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=os.environ.get("RETAIN_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--prefix", default=os.environ.get("RETAIN_TOPIC_PREFIX", ""), help="topic prefix")
    parser.add_argument(
        "--topic", action="append", dest="topics", choices=ALL_TOPICS, help="source topic (repeatable; default all)"
    )


def _against_broker(work: Coroutine[Any, Any, T], bootstrap: str) -> T:
    try:
        return asyncio.run(work)
    except (KafkaError, OSError) as exc:
        raise SystemExit(f"cannot use the broker at {bootstrap}: {exc!r}") from None


def _letters(args: argparse.Namespace) -> list[DeadLetter]:
    return _against_broker(
        read_dead_letters(args.bootstrap, dlq_topics(args.prefix, args.topics or ALL_TOPICS)), args.bootstrap
    )


def list_command(args: argparse.Namespace) -> int:
    letters = _letters(args)
    for letter in letters:
        summary = letter.summary()
        if args.json:
            print(json.dumps(summary))
        else:
            print("  ".join(f"{summary[field]}" for field in ("ref", "id", "type", "consumer", "attempts", "error")))
    if not args.json:
        print(f"{len(letters)} dead-lettered message(s)", file=sys.stderr)
    return 0


def show_command(args: argparse.Namespace) -> int:
    chosen = [
        letter
        for letter in _letters(args)
        if (not args.refs or letter.ref in args.refs) and (not args.event_ids or letter.event_id in args.event_ids)
    ]
    for letter in chosen:
        try:
            body: object = json.loads(letter.value)
        except ValueError:
            body = letter.value.decode("utf-8", errors="replace")
        headers = {key: raw.decode("utf-8", errors="replace") for key, raw in letter.headers}
        print(
            json.dumps(
                {**letter.summary(), "key": letter.key.decode(errors="replace"), "headers": headers, "body": body},
                indent=2,
            )
        )
    return 0 if chosen else 1


def replay_command(args: argparse.Namespace) -> int:
    if not (args.refs or args.event_ids or args.consumer or args.all):
        print("name what to replay: TOPIC:PARTITION:OFFSET, --id, --consumer or --all", file=sys.stderr)
        return 2
    chosen = select(_letters(args), refs=args.refs, event_ids=args.event_ids, consumer=args.consumer)
    if not chosen:
        print("no dead letter matches", file=sys.stderr)
        return 1
    replayed = _against_broker(replay(args.bootstrap, chosen), args.bootstrap)
    for letter in chosen:
        print(f"replayed {letter.ref} ({letter.event_id}) to {letter.source_topic}")
    print(f"{replayed} message(s) re-published; consumers that already handled them skip them (inbox)")
    return 0
