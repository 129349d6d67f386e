"""CloudEvents 1.0 envelope in Kafka binary content mode (docs/architecture.md, "Events on Kafka")."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
# Fixed namespace so that a derived event id is the same on every replica and every redelivery.
_DERIVED_NAMESPACE = uuid.UUID("6f1c1f57-8a36-4c1e-9d0b-7f3f6f0c2a11")

KafkaHeaders = list[tuple[str, bytes]]


class EnvelopeError(ValueError):
    """A Kafka record that is not a valid CloudEvent: a poison message."""


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never succeed: dead-lettered without retries."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def to_kafka(self) -> tuple[bytes, bytes, KafkaHeaders]:
        """Returns (key, value, headers); the key is the customer id so one customer stays on one partition."""
        headers: KafkaHeaders = [
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_specversion", SPECVERSION.encode()),
            ("ce_time", format_time(self.time).encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        return self.subject.encode(), orjson.dumps(self.data), headers

    @classmethod
    def from_kafka(cls, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> CloudEvent:
        attrs = {name: raw.decode("utf-8", errors="replace") for name, raw in headers}
        missing = [name for name in ("ce_id", "ce_source", "ce_type", "ce_time", "ce_subject") if not attrs.get(name)]
        if missing:
            raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
        if attrs.get("ce_specversion", SPECVERSION) != SPECVERSION:
            raise EnvelopeError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
        try:
            data = orjson.loads(value) if value else {}
        except orjson.JSONDecodeError as exc:
            raise EnvelopeError(f"value is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise EnvelopeError("value must be a JSON object")
        return cls(
            id=attrs["ce_id"],
            source=attrs["ce_source"],
            type=attrs["ce_type"],
            subject=attrs["ce_subject"],
            time=parse_time(attrs["ce_time"]),
            data=data,
        )

    def to_structured(self) -> dict[str, Any]:
        """The CloudEvents JSON (structured mode) form, used in HTTP answers and logs."""
        return {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": format_time(self.time),
            "datacontenttype": CONTENT_TYPE,
            "data": self.data,
        }


def format_time(moment: datetime) -> str:
    if moment.tzinfo is not UTC:  # the usual case skips astimezone: once per event on ingest's hot path
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # a UTC isoformat() always ends in "+00:00"


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {text!r} is not RFC 3339") from exc
    if moment.tzinfo is None:
        raise EnvelopeError(f"ce_time {text!r} has no time zone")
    return moment.astimezone(UTC)


def derived_event_id(*parts: str) -> str:
    """Deterministic id for an event derived from others, so reprocessing emits the same id again."""
    return str(uuid.uuid5(_DERIVED_NAMESPACE, "\x1f".join(parts)))


def derived_event(
    *, cause: CloudEvent | str, source: str, type: str, subject: str, time: datetime, data: Mapping[str, Any]
) -> CloudEvent:
    cause_id = cause.id if isinstance(cause, CloudEvent) else cause
    return CloudEvent(
        id=derived_event_id(source, type, subject, cause_id),
        source=source,
        type=type,
        subject=subject,
        time=time,
        data=dict(data),
    )
