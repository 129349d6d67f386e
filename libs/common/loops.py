"""The background polling loop shared by senders, schedulers and checkers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def poll_forever(
    step: Callable[[], Awaitable[int]], *, interval_s: float, name: str, busy_at: int | None = None
) -> None:
    """Runs `step` until cancelled. When it handled `busy_at` items or more there is probably more to do,
    so it runs again at once; otherwise after `interval_s`. A failed pass is logged, never fatal."""
    while True:
        try:
            handled = await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s pass failed; will retry", name)
            handled = 0
        if busy_at is None or handled < busy_at:
            await asyncio.sleep(interval_s)
