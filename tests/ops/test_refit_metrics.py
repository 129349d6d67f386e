"""The refit alert's metrics: a refit that succeeds and one that fails are both counted, and only success moves
the last-refit time (a refit that lost the lock to another is neither)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from services.scoring.adapters.tables import SCHEMA
from services.scoring.handlers.refit import REFIT_LOCK_ID, RefitInProgress, refit
from tests.conftest import Isolation
from tests.scoring.integration.helpers import Harness, harness


def refits(service: str, outcome: str) -> float:
    labels = {"service": service, "trigger": "test", "outcome": outcome}
    return REGISTRY.get_sample_value("retain_model_refits_total", labels) or 0.0


def last_refit(service: str) -> float | None:
    return REGISTRY.get_sample_value("retain_model_last_refit_timestamp_seconds", {"service": service})


@pytest.fixture
async def scoring(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated):
        yield h


async def test_refits_are_counted_by_outcome(scoring: Harness) -> None:
    name = scoring.settings.service
    succeeded, failed = refits(name, "succeeded"), refits(name, "failed")
    started = time.time()
    await refit(scoring.service, scoring.sessions, scoring.outbox, trigger="test")
    assert refits(name, "succeeded") == succeeded + 1
    finished_at = last_refit(name)
    assert finished_at is not None and finished_at >= started

    async with scoring.sessions() as holder, holder.begin():
        await holder.execute(select(func.pg_advisory_xact_lock(REFIT_LOCK_ID)))
        with pytest.raises(RefitInProgress):
            await refit(scoring.service, scoring.sessions, scoring.outbox, trigger="test")
    assert refits(name, "failed") == failed

    # The model table gone: the refit cannot store what it fitted.
    async with scoring.engine.begin() as connection:
        await connection.exec_driver_sql(f"ALTER TABLE {SCHEMA}.models RENAME TO models_gone")
    with pytest.raises(Exception, match="models"):
        await refit(scoring.service, scoring.sessions, scoring.outbox, trigger="test")
    assert refits(name, "failed") == failed + 1
    assert refits(name, "succeeded") == succeeded + 1
    assert last_refit(name) == finished_at
