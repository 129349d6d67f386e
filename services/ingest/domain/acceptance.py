"""What ingest answers for one event: accepted (published, or held in the event log), duplicate or erased."""

from __future__ import annotations

from typing import Literal, NamedTuple

# "erased": the event is from before its customer was erased; neither kept nor published (handlers.erasure).
Status = Literal["accepted", "duplicate", "erased"]


class Acceptance(NamedTuple):
    event_id: str
    status: Status
    published: bool
