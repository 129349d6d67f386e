"""Group commit: concurrent small requests share one event-log insert, one publish and one commit.

Each single-event request alone costs several database round trips and a producer send; at 1,000
requests/s that saturates a core. Requests that arrive while earlier groups are in flight (or within
`window_s` of each other, when a window is set) are accepted together by `accept_items`: one
event-log insert (`event_log.insert_fresh`), all records handed to the producer before any acknowledgement
is awaited, one commit. Every request then gets its own outcomes, exactly as if it had been accepted alone:
a repeated id within the group is a duplicate of its first occurrence, in arrival order. Validation happens
before a request joins a group, so one bad item cannot affect the others; the guarantees are those of
`accept_items` (202 only after the broker's acknowledgement or a durable outbox commit).

Should a group fail before anything was handed to the broker (e.g. the database rejects one event's
data), its requests are retried one by one so that only the offending request fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from services.ingest.domain.incoming import ValidEvent
from services.ingest.handlers.accept import Acceptance, accept_items
from services.ingest.handlers.deps import IngestDeps
from services.ingest.metrics import BATCH_SIZE

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Request:
    events: Sequence[ValidEvent]
    source: str
    future: asyncio.Future[list[Acceptance]]


class GroupCommitter:
    def __init__(self, ctx: IngestDeps, *, window_s: float = 0.0, max_items: int = 1000, max_inflight: int = 1) -> None:
        self.ctx = ctx
        self.window_s = window_s
        self.max_items = max_items
        self.max_inflight = max_inflight
        self._pending: deque[_Request] = deque()
        self._pending_items = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def submit(self, events: Sequence[ValidEvent], source: str) -> list[Acceptance]:
        """The outcome of each event in order, once it is published or durably in the outbox."""
        if not events:
            return []
        future: asyncio.Future[list[Acceptance]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(events, source, future))
        self._pending_items += len(events)
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if not self._pending or self._timer is not None or len(self._flushes) >= self.max_inflight:
            return
        if self._pending_items >= self.max_items or self.window_s <= 0:
            self._start()
        else:
            self._timer = asyncio.get_running_loop().call_later(self.window_s, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._start()

    def _start(self) -> None:
        while self._pending and len(self._flushes) < self.max_inflight:
            group: list[_Request] = []
            items = 0
            while self._pending and (not group or items + len(self._pending[0].events) <= self.max_items):
                request = self._pending.popleft()
                group.append(request)
                items += len(request.events)
            self._pending_items -= items
            task = asyncio.create_task(self._flush(group), name="ingest-group-commit")
            self._flushes.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._flushes.discard(task)
        # Whatever queued up while the groups were in flight has already waited: go at once.
        if self._pending and self._timer is None:
            self._start()

    async def _flush(self, group: list[_Request]) -> None:
        items = [(event, request.source) for request in group for event in request.events]
        BATCH_SIZE.labels("group").observe(len(items))
        progress: list[str] = []
        try:
            outcomes = await accept_items(self.ctx, items, progress)
        except Exception as exc:
            if len(group) > 1 and not progress:
                log.warning("group commit failed; accepting its requests one by one", extra={"error": repr(exc)})
                await asyncio.gather(*(self._alone(request) for request in group))
            else:
                for request in group:
                    if not request.future.done():
                        request.future.set_exception(exc)
            return
        start = 0
        for request in group:
            end = start + len(request.events)
            if not request.future.done():
                request.future.set_result(outcomes[start:end])
            start = end

    async def _alone(self, request: _Request) -> None:
        try:
            outcomes = await accept_items(self.ctx, [(event, request.source) for event in request.events])
        except Exception as exc:
            if not request.future.done():
                request.future.set_exception(exc)
        else:
            if not request.future.done():
                request.future.set_result(outcomes)

    async def aclose(self) -> None:
        """Accepts what is queued and waits for every group in flight (before the pool closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending or self._flushes:
            self._start()
            await asyncio.gather(*self._flushes, return_exceptions=True)
