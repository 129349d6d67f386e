"""The event shape the domain consumes.

A structural protocol rather than an import of the envelope class, so the service can pass
`libs.common.envelope.CloudEvent` as-is and tests can use the small `ProfileEvent` below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


class EventLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def time(self) -> datetime: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ProfileEvent:
    id: str
    type: str
    subject: str
    time: datetime
    data: Mapping[str, Any] = field(default_factory=dict)


def utc(moment: datetime) -> datetime:
    # Naive times are taken as UTC: ingest already rejects them, so this only guards hand-built test events.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
