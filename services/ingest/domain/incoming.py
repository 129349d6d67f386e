"""An upstream event as posted to ingest, validated against the schema of its type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from libs.common.envelope import CloudEvent
from libs.common.events import UPSTREAM_EVENT_TYPES, Identifier

MAX_CLOCK_SKEW = timedelta(minutes=5)


class IncomingEvent(BaseModel):
    """The CloudEvents attributes flattened; `customer_id` becomes `ce_subject`."""

    model_config = ConfigDict(extra="forbid")

    id: Identifier
    type: str = Field(description="One of: " + ", ".join(UPSTREAM_EVENT_TYPES))
    customer_id: Identifier
    time: AwareDatetime
    data: dict[str, Any]


class InvalidEvent(ValueError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def validate_event(raw: Any, *, source: str, now: datetime | None = None) -> CloudEvent:
    """Returns the CloudEvent to publish, or raises InvalidEvent naming every offending field."""
    from libs.common.problems import validation_errors

    try:
        incoming = IncomingEvent.model_validate(raw)
    except ValidationError as exc:
        raise InvalidEvent(validation_errors(exc.errors())) from exc
    schema = UPSTREAM_EVENT_TYPES.get(incoming.type)
    if schema is None:
        raise InvalidEvent(
            [{"field": "type", "message": f"unknown event type '{incoming.type}'", "code": "unknown_type"}]
        )
    moment = incoming.time.astimezone(UTC)
    if moment > (now or datetime.now(UTC)) + MAX_CLOCK_SKEW:
        raise InvalidEvent([{"field": "time", "message": "event time is more than 5 minutes in the future", "code": "future_time"}])
    try:
        data = schema.model_validate(incoming.data)
    except ValidationError as exc:
        raise InvalidEvent(validation_errors([{**e, "loc": ("data", *e["loc"])} for e in exc.errors()])) from exc
    return CloudEvent(
        id=incoming.id,
        source=source,
        type=incoming.type,
        subject=incoming.customer_id,
        time=moment,
        data=data.model_dump(mode="json", exclude_none=True),
    )
