from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.campaign.integration.harness import Harness, make_harness
from tests.conftest import Isolation


@pytest.fixture
async def harness(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in make_harness(isolated):
        yield h
