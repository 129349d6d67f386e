"""One whole platform (every service as a process under the supervisor) shared by this package's modules, which
only add customers of their own to it: the fuzzing and the arrival-order property tests. Starting and draining it
costs about a minute, which each module would otherwise pay again; it lives only while this package runs, so it
never runs beside another test's platform."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from retain_cli.embedded import free_port
from retain_cli.supervisor import SERVICES, Supervisor
from tests.conftest import Isolation, Stack


@dataclass
class Platform:
    supervisor: Supervisor
    database_url: str  # for asyncpg: what a service keeps in its own tables

    def url(self, service: str) -> str:
        return self.supervisor.url(service)


@pytest.fixture(scope="package")
async def shared_platform(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    name = f"platform{os.getpid()}"
    stack.postgres.create_database(name)
    isolated = Isolation(stack, database=name, prefix=f"{name}-")
    logs: Path = tmp_path_factory.mktemp("platform-logs")
    supervisor = Supervisor(env=isolated.env(), ports={s: free_port() for s in SERVICES}, log_dir=logs)
    supervisor.start_all()
    try:
        ready = await supervisor.wait_ready(90)
        assert all(ready.values()), f"not ready: {ready}; logs in {logs}"
        url = stack.postgres.database_url(name).replace("postgresql+asyncpg://", "postgresql://")
        yield Platform(supervisor, url)
    finally:
        await supervisor.shutdown(drain_timeout_s=10)
        supervisor.stop(SERVICES)
