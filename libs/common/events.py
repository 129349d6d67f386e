"""Upstream event schemas: the payloads that shops and ERPs post to ingest.

Each model is the `data` of a CloudEvent whose `type` is the key in `UPSTREAM_EVENT_TYPES`.
Derived events (profile.updated, threshold.crossed, ...) are owned by the services that emit them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

import pycountry
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Literal["1"] = "1"

# PostgreSQL's text and jsonb cannot hold U+0000, so no string of an event may: every free-form string type
# below carries this pattern (checked in pydantic-core), and the error names the offending field.
NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL_MESSAGE = "must not contain the NUL character (U+0000)"
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NO_NUL_PATTERN)
]
# Serialised as a JSON number so consumers in any language read amounts without string parsing.
Money = Annotated[
    Decimal, Field(ge=0, max_digits=14, decimal_places=4), PlainSerializer(float, return_type=float, when_used="json")
]
ShortText = Annotated[str, StringConstraints(max_length=256, pattern=NO_NUL_PATTERN)]
LongText = Annotated[str, StringConstraints(max_length=10_000, pattern=NO_NUL_PATTERN)]
Channel = Literal["email", "sms", "wecom", "webhook", "push", "phone"]
LoginChannel = Literal["web", "app", "pos", "phone", "api", "other"]
TicketPriority = Literal["low", "normal", "high", "urgent"]
TicketStatus = Literal["open", "in_progress", "waiting_on_customer", "on_hold", "resolved", "closed"]

# Amounts must match their line items within a cent: upstream rounding differs, fraud does not.
AMOUNT_TOLERANCE = Decimal("0.01")
_ZERO = Decimal(0)


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal["1"] = SCHEMA_VERSION


# pycountry's lookup is a linear scan; this runs once per purchase on ingest's hot path.
_CURRENCIES = frozenset(currency.alpha_3 for currency in pycountry.currencies)


def _check_currency(code: str) -> str:
    if code not in _CURRENCIES:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    sku: Identifier
    category: Identifier
    quantity: int = Field(gt=0, le=1_000_000)
    price: Money


class Purchase(EventData):
    order_id: Identifier
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    items: list[LineItem] = Field(default_factory=list, max_length=1000)
    coupon_code: Identifier | None = None

    _currency = field_validator("currency")(_check_currency)

    @model_validator(mode="after")
    def _amount_matches_items(self) -> Purchase:
        # A plain loop: once per purchase on ingest's hot path, where sum() over a generator cost twice as much.
        if self.items:
            total = _ZERO
            for item in self.items:
                total += item.price * item.quantity
            if abs(total - self.amount) > AMOUNT_TOLERANCE:
                raise ValueError(f"amount {self.amount} does not equal the sum of items {total}")
        return self


class Refund(EventData):
    order_id: Identifier
    amount: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    reason: ShortText | None = None
    # the upstream's own id of the refund: a refund sent twice under two event ids counts once (without it, two
    # refunds of one order at the same time and amount are taken for one)
    refund_id: Identifier | None = None

    _currency = field_validator("currency")(_check_currency)


class Login(EventData):
    channel: LoginChannel = "web"


class PageView(EventData):
    sku: Identifier | None = None
    category: Identifier | None = None
    url: Annotated[str, StringConstraints(max_length=2048, pattern=NO_NUL_PATTERN)] | None = None


class TicketOpened(EventData):
    ticket_id: Identifier
    priority: TicketPriority = "normal"
    category: Identifier = "general"
    channel: Identifier = "email"
    text: LongText = ""


class TicketUpdated(EventData):
    ticket_id: Identifier
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    text: LongText | None = None
    agent_id: Identifier | None = None
    # True when this update is an agent's reply: it stops the first-response SLA clock.
    agent_response: bool = False


class TicketClosed(EventData):
    ticket_id: Identifier
    resolution: LongText | None = None


class SurveyResponse(EventData):
    survey_id: Identifier | None = None
    nps: int | None = Field(default=None, ge=0, le=10)
    csat: int | None = Field(default=None, ge=1, le=5)
    comment: LongText | None = None

    @model_validator(mode="after")
    def _has_a_score(self) -> SurveyResponse:
        if self.nps is None and self.csat is None:
            raise ValueError("a survey response needs an nps or a csat score")
        return self


class CustomerUpserted(EventData):
    name: ShortText | None = None
    email: (
        Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")] | None
    ) = None
    phone: Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()\-]{5,31}$")] | None = None
    birthday: date | None = None
    region: ShortText | None = None
    industry: ShortText | None = None
    timezone: ShortText | None = None
    erp_id: Identifier | None = None
    shop_id: Identifier | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import available_timezones

        if value not in available_timezones():
            raise ValueError(f"'{value}' is not an IANA time zone")
        return value


class ConsentChanged(EventData):
    channel: Channel
    granted: bool


UPSTREAM_EVENT_TYPES: dict[str, type[EventData]] = {
    "purchase": Purchase,
    "refund": Refund,
    "login": Login,
    "page_view": PageView,
    "ticket.opened": TicketOpened,
    "ticket.updated": TicketUpdated,
    "ticket.closed": TicketClosed,
    "survey.response": SurveyResponse,
    "customer.upserted": CustomerUpserted,
    "consent.changed": ConsentChanged,
}
