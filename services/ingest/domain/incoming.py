"""Validation of upstream events as posted to ingest, in both accepted shapes.

- flattened (`application/json`): `{"id", "type", "customer_id", "time", "data"}`;
- CloudEvents structured mode (`application/cloudevents+json`): `{"specversion", "id", "source", "type",
  "subject", "time", "data"}`; `source` is checked but replaced by the API key's source name.

One discriminated union per shape validates the envelope and the `data` of its type in one pass (Rust),
which is what keeps the hot path fast. Errors name fields the way the caller wrote them
(`data.items[0].price`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from libs.common.envelope import format_time
from libs.common.events import NO_NUL_PATTERN, UPSTREAM_EVENT_TYPES, EventData, Identifier
from libs.common.field_errors import field_path, message_and_code


class TimeWindow(NamedTuple):
    """Event times ingest accepts: from `earliest` to `ahead` past the current time (upstream clock skew).

    What lies outside is refused at the door rather than left to the services: a time before 1970 overflows the
    32-bit second counts they store (feedback's SLA clocks), and a time far ahead would hold a customer's state
    "as of" the future.
    """

    earliest: datetime
    ahead: timedelta


DEFAULT_TIME_WINDOW = TimeWindow(datetime(1970, 1, 1, tzinfo=UTC), timedelta(minutes=5))
# The default window's skew, as the flat envelope's documentation states it.
MAX_CLOCK_SKEW = DEFAULT_TIME_WINDOW.ahead
_TIME_HELP = "must be an RFC 3339 timestamp with a time zone, e.g. 2026-11-20T10:00:00Z"

# pydantic's datetime alone would also take unix numbers and zone-less times; upstream clocks must say
# which zone they are in, or a purchase lands hours away from when it happened. The pattern is checked
# in Rust and the text parsed once afterwards (datetime.fromisoformat, in C): Python validators inside
# the model would cost more than the rest of an event's validation.
EventTime = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-20T10:00:00Z"]}),
]


class Bounds(NamedTuple):
    """A `TimeWindow` as of one request (computed once per request, not per event)."""

    earliest: datetime
    latest: datetime
    ahead: timedelta


def event_time(text: str, bounds: Bounds) -> datetime:
    """The validated text as UTC; raises InvalidEvent for a time outside `bounds`."""
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError as exc:  # passes the pattern but is no date, e.g. 2026-02-30
        raise InvalidEvent([{"field": "time", "message": f"{_TIME_HELP}: {exc}", "code": "datetime"}]) from exc
    if moment > bounds.latest:
        ahead = _describe(bounds.ahead)
        raise InvalidEvent(
            [{"field": "time", "message": f"event time is more than {ahead} in the future", "code": "future_time"}]
        )
    if moment < bounds.earliest:
        earliest = format_time(bounds.earliest)
        raise InvalidEvent([{"field": "time", "message": f"event time is before {earliest}", "code": "past_time"}])
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def _describe(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 60 == 0 and seconds:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def time_text(text: str, moment: datetime) -> str:
    """`format_time(moment)` for the validated `text` of `moment`: the text itself when written that way already.

    UTC with "T", "Z" and no or six fraction digits is how most upstream clocks write times; reusing the text spares
    formatting it again (a third of building an event's Kafka headers).
    """
    if text[-1] == "Z" and text[10] == "T" and (len(text) == 20 or (len(text) == 27 and moment.microsecond)):
        return text
    return format_time(moment)


class FlatEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Identifier = Field(description="Unique per event; a repeat within the dedupe window is a duplicate.")
    customer_id: Identifier = Field(description="Becomes ce_subject and the Kafka key.")
    time: EventTime = Field(
        description="Event time, RFC 3339 with zone; by default from 1970 to at most 5 minutes in the future "
        "(RETAIN_INGEST_EARLIEST_EVENT_TIME, RETAIN_INGEST_MAX_EVENT_TIME_AHEAD_S)."
    )


class StructuredEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    specversion: Literal["1.0"]
    id: Identifier
    source: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=NO_NUL_PATTERN)] = Field(
        description="Required by CloudEvents; ingest sets ce_source from the API key instead."
    )
    subject: Identifier = Field(description="The customer id.")
    time: EventTime
    datacontenttype: Literal["application/json"] | None = None
    dataschema: Annotated[str, StringConstraints(max_length=2048)] | None = None


def _union(base: type[BaseModel], suffix: str) -> tuple[Any, list[type[BaseModel]]]:
    members: list[type[BaseModel]] = []
    for name, schema in UPSTREAM_EVENT_TYPES.items():
        members.append(
            create_model(
                f"{schema.__name__}{suffix}",
                __base__=base,
                type=(Literal[name], Field(description="The event type")),  # type: ignore[arg-type]
                data=(schema, ...),
            )
        )
    return Annotated[Union[tuple(members)], Field(discriminator="type")], members  # noqa: UP007


_FlatUnion, FLAT_MODELS = _union(FlatEnvelope, "Event")
_StructuredUnion, STRUCTURED_MODELS = _union(StructuredEnvelope, "CloudEvent")
FLAT_ADAPTER: TypeAdapter[Any] = TypeAdapter(_FlatUnion)
STRUCTURED_ADAPTER: TypeAdapter[Any] = TypeAdapter(_StructuredUnion)


class _FlatBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[_FlatUnion]  # type: ignore[valid-type]


FLAT_BATCH_ADAPTER: TypeAdapter[Any] = TypeAdapter(_FlatBatch)
STRUCTURED_BATCH_ADAPTER: TypeAdapter[Any] = TypeAdapter(list[_StructuredUnion])  # type: ignore[valid-type]

Shape = Literal["flat", "structured"]


class ValidEvent(NamedTuple):
    """A validated event. A named tuple: built per event on the hot path, at a third of a frozen dataclass's cost."""

    id: str
    type: str
    customer_id: str
    time: datetime
    time_text: str  # `time` as ce_time carries it: RFC 3339 in UTC with "Z"
    data: EventData


class InvalidEvent(ValueError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]))
        self.errors = errors


def _bounds(now: datetime | None, window: TimeWindow) -> Bounds:
    """The accepted event times of one request."""
    return Bounds(window.earliest, (now or datetime.now(UTC)) + window.ahead, window.ahead)


def _valid(model: Any, bounds: Bounds) -> ValidEvent:
    customer = model.customer_id if hasattr(model, "customer_id") else model.subject
    moment = event_time(model.time, bounds)
    return ValidEvent(model.id, model.type, customer, moment, time_text(model.time, moment), model.data)


def describe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as `{field, message, code}`, without the union's tag in the path."""
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] in UPSTREAM_EVENT_TYPES:
            loc = loc[1:]  # the discriminated union's branch name, not a field the caller wrote
        message, code = message_and_code(err)
        if code in ("union_tag_invalid", "union_tag_not_found"):
            loc = ("type",)
            known = ", ".join(UPSTREAM_EVENT_TYPES)
            if code == "union_tag_invalid":
                message, code = f"unknown event type; expected one of: {known}", "unknown_type"
            else:
                message, code = f"Field required; one of: {known}", "missing"
        if code == "string_pattern_mismatch" and loc and loc[-1] == "time":
            message = _TIME_HELP
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        errors.append({"field": field_path(loc) if loc else "body", "message": message, "code": code})
    return errors


def _adapter(shape: Shape) -> TypeAdapter[Any]:
    return FLAT_ADAPTER if shape == "flat" else STRUCTURED_ADAPTER


def validate_python(
    raw: Any, shape: Shape = "flat", *, now: datetime | None = None, window: TimeWindow = DEFAULT_TIME_WINDOW
) -> ValidEvent:
    """Validates one already-decoded item (a batch element or an import row)."""
    try:
        return _valid(_adapter(shape).validate_python(raw), _bounds(now, window))
    except ValidationError as exc:
        raise InvalidEvent(describe_errors(exc)) from exc


class MalformedJson(ValueError):
    pass


def validate_json(
    body: bytes, shape: Shape = "flat", *, now: datetime | None = None, window: TimeWindow = DEFAULT_TIME_WINDOW
) -> ValidEvent:
    """Validates one request body straight from bytes: no intermediate dicts on the hot path."""
    try:
        return _valid(_adapter(shape).validate_json(body), _bounds(now, window))
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise MalformedJson(exc.errors()[0]["msg"]) from exc
        raise InvalidEvent(describe_errors(exc)) from exc


def validate_batch_json(
    body: bytes,
    shape: Shape,
    max_items: int,
    *,
    now: datetime | None = None,
    window: TimeWindow = DEFAULT_TIME_WINDOW,
) -> list[ValidEvent] | None:
    """A whole batch body in one pass over the bytes, or None if anything in it is wrong.

    The common case, a batch without a bad item, is validated without decoding to Python objects first; on
    None the caller validates item by item, which is what reports each bad item on its own.
    """
    adapter = FLAT_BATCH_ADAPTER if shape == "flat" else STRUCTURED_BATCH_ADAPTER
    try:
        parsed = adapter.validate_json(body)
    except ValidationError:
        return None
    models = parsed.events if shape == "flat" else parsed
    if len(models) > max_items:
        return None
    bounds = _bounds(now, window)
    try:
        return [_valid(model, bounds) for model in models]
    except InvalidEvent:
        return None
