"""Timeline rows: a short summary per event, and the opaque keyset cursor of the paged timeline API."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson

from libs.common.envelope import format_time, parse_time
from libs.common.events import (
    ConsentChanged,
    CustomerUpserted,
    EventData,
    Login,
    PageView,
    Purchase,
    Refund,
    SurveyResponse,
    TicketClosed,
    TicketOpened,
    TicketUpdated,
)


def summarise(event_type: str, payload: EventData) -> dict[str, Any]:
    """What an account manager scanning the timeline needs; never free text or PII (erasure stays simple)."""
    if isinstance(payload, Purchase):
        return {
            "order_id": payload.order_id,
            "amount": float(payload.amount),
            "currency": payload.currency,
            "items": sum(item.quantity for item in payload.items),
            "categories": sorted({item.category for item in payload.items}),
            **({"coupon_code": payload.coupon_code} if payload.coupon_code else {}),
        }
    if isinstance(payload, Refund):
        return {"order_id": payload.order_id, "amount": float(payload.amount), "currency": payload.currency}
    if isinstance(payload, Login):
        return {"channel": payload.channel}
    if isinstance(payload, PageView):
        return {key: value for key, value in (("sku", payload.sku), ("category", payload.category)) if value}
    if isinstance(payload, TicketOpened):
        return {"ticket_id": payload.ticket_id, "priority": payload.priority, "category": payload.category}
    if isinstance(payload, TicketUpdated):
        return {"ticket_id": payload.ticket_id, "status": payload.status, "priority": payload.priority}
    if isinstance(payload, TicketClosed):
        return {"ticket_id": payload.ticket_id}
    if isinstance(payload, SurveyResponse):
        return {"nps": payload.nps, "csat": payload.csat}
    if isinstance(payload, ConsentChanged):
        return {"channel": payload.channel, "granted": payload.granted}
    if isinstance(payload, CustomerUpserted):
        # Names of the fields sent, not their values: the timeline must hold no PII.
        return {"fields": sorted(payload.model_dump(exclude_none=True, exclude={"schema_version"}))}
    return {"type": event_type}


class InvalidCursor(ValueError):
    pass


def encode_cursor(*parts: str | datetime) -> str:
    values = [format_time(part) if isinstance(part, datetime) else part for part in parts]
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """Inverse of encode_cursor; `kinds` says which parts are datetimes (datetime) and which strings (str)."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("wrong shape")
        return [parse_time(value) if kind is datetime else str(value) for value, kind in zip(raw, kinds, strict=True)]
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not one this API issued") from exc
