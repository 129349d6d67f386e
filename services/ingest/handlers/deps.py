"""What ingest's handlers share for the life of the app: the asyncpg pool, the broker circuit, the limiter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from libs.common.kafka import Publisher
from libs.common.ratelimit import TokenBucket
from libs.common.runtime import Runtime
from libs.common.topics import CUSTOMER_EVENTS
from services.ingest.domain.acceptance import Acceptance
from services.ingest.domain.circuit import Circuit
from services.ingest.domain.incoming import ValidEvent
from services.ingest.handlers.sealing import Sealer
from services.ingest.metrics import BROKER_CIRCUIT_OPEN
from services.ingest.settings import IngestSettings


class Committer(Protocol):
    """What the handlers need of the group committer (handlers/group_commit.py), which itself needs these deps."""

    async def submit(self, events: Sequence[ValidEvent], source: str) -> list[Acceptance]: ...

    async def aclose(self) -> None: ...


@dataclass
class IngestDeps:
    runtime: Runtime
    settings: IngestSettings
    pool: asyncpg.Pool
    circuit: Circuit
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    relay_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Deliveries a request stopped waiting for. The producer keeps retrying them, so the relay must
    # learn their fate before publishing those events again, or a short outage would publish twice.
    in_doubt: dict[str, asyncio.Future[Any]] = field(default_factory=dict)
    # Set at start-up: coalesces concurrent small requests into one insert, publish and commit.
    committer: Committer | None = None
    # Seals personal data with per-customer keys (handlers/sealing.py); None without a master key.
    sealer: Sealer | None = None

    @property
    def publisher(self) -> Publisher:
        # The runtime replaces its publisher while it retries the first connection: never keep a copy.
        return self.runtime.publisher

    @property
    def topic(self) -> str:
        return self.publisher.topic(CUSTOMER_EVENTS)

    def broker_usable(self) -> bool:
        allowed = self.publisher.started and self.circuit.allows(time.monotonic())
        BROKER_CIRCUIT_OPEN.set(1 if self.circuit.is_open else 0)
        return allowed

    def broker_failed(self) -> None:
        self.circuit.failed(time.monotonic())
        BROKER_CIRCUIT_OPEN.set(1)
        self.relay_wakeup.set()

    def broker_succeeded(self) -> None:
        self.circuit.succeeded()
        BROKER_CIRCUIT_OPEN.set(0)
