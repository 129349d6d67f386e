"""Test fixtures: one real PostgreSQL server and one real broker per test run.

Every test gets its own database and its own topic prefix, so tests never see each other's data.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from libs.common.settings import Settings
from retain_cli.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, start_broker, start_postgres

ADMIN_KEY = "test-admin-key"
TEST_API_KEYS = {
    ADMIN_KEY: {"source": "test-admin", "scopes": ["admin"]},
    "test-shop-key": {"source": "shop", "scopes": ["events:write"]},
    "test-reader-key": {"source": "crm", "scopes": ["customers:read"]},
}
_counter = itertools.count()
# Consumer-group joins on the embedded broker take about half the session timeout.
FAST_GROUP_JOIN = {"consumer_session_timeout_ms": 4000, "consumer_heartbeat_interval_ms": 1000}


@dataclass
class Stack:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker

    def settings(self, service: str, *, database: str, prefix: str, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "service": service,
            "database_url": self.postgres.database_url(database),
            "kafka_bootstrap": self.broker.bootstrap,
            "topic_prefix": prefix,
            "topic_partitions": 2,
            "api_keys": TEST_API_KEYS,
            "outbox_poll_interval_s": 0.02,
            "consumer_retry_backoff_s": 0.01,
            **FAST_GROUP_JOIN,
        }
        values.update(overrides)
        return Settings.model_validate(values)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("stack")
    postgres = start_postgres(base / "postgres")
    broker = start_broker(free_port(), base / "broker.log")
    try:
        yield Stack(postgres, broker)
    finally:
        broker.stop()
        postgres.stop()


@dataclass
class Isolation:
    """A fresh database and topic prefix for one test."""

    stack: Stack
    database: str
    prefix: str

    def settings(self, service: str, **overrides: object) -> Settings:
        return self.stack.settings(service, database=self.database, prefix=self.prefix, **overrides)

    def env(self) -> dict[str, str]:
        """The same isolation for services started as separate processes."""
        return {
            **os.environ,
            "RETAIN_DATABASE_URL": self.stack.postgres.database_url(self.database),
            "RETAIN_KAFKA_BOOTSTRAP": self.stack.broker.bootstrap,
            "RETAIN_TOPIC_PREFIX": self.prefix,
            "RETAIN_TOPIC_PARTITIONS": "2",
            "RETAIN_API_KEYS": json.dumps(TEST_API_KEYS),
            "RETAIN_OUTBOX_POLL_INTERVAL_S": "0.02",
            **{f"RETAIN_{name.upper()}": str(value) for name, value in FAST_GROUP_JOIN.items()},
        }


@pytest.fixture
def isolated(stack: Stack) -> Isolation:
    n = next(_counter)
    name = f"t{os.getpid()}_{n}"
    stack.postgres.create_database(name)
    return Isolation(stack, database=name, prefix=f"{name}-")


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


async def running(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """Runs the app's lifespan (migrations, broker, consumers) and talks HTTP to it in-process."""
    async with app.router.lifespan_context(app):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            yield client


REPO_ROOT = Path(__file__).resolve().parent.parent
