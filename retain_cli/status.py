"""`retain status`: what an operator checks first — each service's readiness, consumer lag per group, outbox
backlog and dead letters, from the services' own endpoints and the broker (no database access)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass, field

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from libs.common.topics import ALL_TOPICS, dlq_of, qualified
from retain_cli.dlq import dead_letter_counts, kafka_options
from retain_cli.supervisor import SERVICES, configured_ports, consumer_groups

# Gauges a service reports for rows written but not yet published.
BACKLOG_METRICS = ("retain_outbox_backlog", "retain_ingest_outbox_depth")


@dataclass
class ServiceStatus:
    name: str
    url: str
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    outbox_backlog: int | None = None


@dataclass
class GroupLag:
    group: str
    topics: tuple[str, ...]
    lag: int | None
    by_partition: dict[str, int] = field(default_factory=dict)


@dataclass
class Status:
    services: list[ServiceStatus]
    groups: list[GroupLag]
    dead_letters: dict[str, int]
    broker_error: str | None = None

    @property
    def healthy(self) -> bool:
        return self.broker_error is None and all(service.ready for service in self.services)


def service_urls(host: str) -> dict[str, str]:
    ports = configured_ports()
    return {name: os.environ.get(f"RETAIN_{name.upper()}_URL", f"http://{host}:{ports[name]}") for name in SERVICES}


def backlog_from_metrics(exposition: str) -> int:
    """Sum of the outbox gauges in one /metrics answer."""
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        if family.name in BACKLOG_METRICS:
            total += sum(sample.value for sample in family.samples)
    return int(total)


async def service_status(client: httpx.AsyncClient, name: str, url: str) -> ServiceStatus:
    try:
        ready = await client.get(f"{url}/readyz")
        checks = {key: str(value) for key, value in ready.json().items()}
        metrics = await client.get(f"{url}/metrics")
        backlog = backlog_from_metrics(metrics.text) if metrics.status_code == 200 else None
        return ServiceStatus(name, url, ready.status_code == 200, checks, backlog)
    except (httpx.HTTPError, ValueError) as exc:
        return ServiceStatus(name, url, False, {"status": f"unreachable ({type(exc).__name__})"})


async def group_lags(bootstrap: str, prefix: str, groups: dict[str, tuple[str, ...]]) -> list[GroupLag]:
    """Records each group is behind the partition ends; a group that never committed counts from the start."""
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    probe = AIOKafkaConsumer(**kafka_options(bootstrap), enable_auto_commit=False)
    try:
        await admin.start()
        await probe.start()
        lags: list[GroupLag] = []
        for group, topics in groups.items():
            partitions = [
                TopicPartition(qualified(prefix, topic), p)
                for topic in topics
                for p in sorted(probe.partitions_for_topic(qualified(prefix, topic)) or ())
            ]
            if not partitions:
                lags.append(GroupLag(group, topics, None))
                continue
            ends = await probe.end_offsets(partitions)
            starts = await probe.beginning_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(qualified(prefix, group), partitions=partitions)
            by_partition: dict[str, int] = {}
            for tp in partitions:
                meta = committed.get(tp)
                position = meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
                by_partition[f"{tp.topic}:{tp.partition}"] = max(0, ends[tp] - position)
            lags.append(GroupLag(group, topics, sum(by_partition.values()), by_partition))
        return lags
    finally:
        await probe.stop()
        await admin.close()


def quiet_consumer_groups() -> dict[str, tuple[str, ...]]:
    """The groups, read from the services' definitions without the start-up warnings building them logs (about
    secrets of the services' own processes, not of this command)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        return consumer_groups()
    finally:
        logging.disable(previous)


async def collect(host: str, bootstrap: str, prefix: str, timeout_s: float = 5.0) -> Status:
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        services = await asyncio.gather(
            *(service_status(client, name, url) for name, url in service_urls(host).items())
        )
    groups: list[GroupLag] = []
    dead: dict[str, int] = {}
    broker_error = None
    try:
        groups = await asyncio.wait_for(group_lags(bootstrap, prefix, quiet_consumer_groups()), timeout_s * 2)
        topics = [qualified(prefix, dlq_of(base)) for base in ALL_TOPICS]
        dead = await asyncio.wait_for(dead_letter_counts(bootstrap, topics), timeout_s * 2)
    except Exception as exc:  # an unreachable broker is a status to show, not a crash
        broker_error = repr(exc)
    return Status(list(services), groups, dead, broker_error)


def render(status: Status) -> str:
    lines = ["SERVICE   READY  DATABASE     BROKER       OUTBOX  URL"]
    for s in status.services:
        lines.append(
            f"{s.name:<9} {'yes' if s.ready else 'NO':<6} {s.checks.get('database', '-'):<12} "
            f"{s.checks.get('broker', s.checks.get('status', '-')):<12} "
            f"{'-' if s.outbox_backlog is None else s.outbox_backlog:<7} {s.url}"
        )
    lines.append("")
    if status.broker_error:
        lines.append(f"broker: unreachable ({status.broker_error})")
        return "\n".join(lines)
    lines.append("CONSUMER GROUP              LAG")
    for g in status.groups:
        lines.append(f"{g.group:<27} {'no topic' if g.lag is None else g.lag}")
    lines.append("")
    lines.append("DEAD-LETTER TOPIC           MESSAGES")
    for topic, count in status.dead_letters.items():
        lines.append(f"{topic:<27} {count}")
    return "\n".join(lines)


def add_status_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="health, consumer lag, outbox backlog and dead letters")
    status.add_argument("--host", default="127.0.0.1", help="where the services listen (RETAIN_<NAME>_URL overrides)")
    status.add_argument("--bootstrap", default=os.environ.get("RETAIN_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    status.add_argument("--prefix", default=os.environ.get("RETAIN_TOPIC_PREFIX", ""), help="topic prefix")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    status = asyncio.run(collect(args.host, args.bootstrap, args.prefix))
    print(json.dumps(asdict(status), indent=2) if args.json else render(status))
    # Non-zero when anything is down, so scripts and probes can use it.
    return 0 if status.healthy else 1
