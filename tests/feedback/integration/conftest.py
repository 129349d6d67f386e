from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Isolation
from tests.feedback.integration.harness import Harness, make_harness


@pytest.fixture
async def harness(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in make_harness(isolated):
        yield h
