"""One example per upstream type: shown in OpenAPI and used by tests as known-good events."""

from __future__ import annotations

import copy
from typing import Any

EXAMPLE_DATA: dict[str, dict[str, Any]] = {
    "purchase": {
        "order_id": "o-9",
        "amount": 120.5,
        "currency": "USD",
        "items": [{"sku": "s-1", "category": "books", "quantity": 1, "price": 120.5}],
        "coupon_code": "WELCOME10",
    },
    "refund": {"order_id": "o-9", "amount": 20.0, "currency": "EUR", "reason": "damaged"},
    "login": {"channel": "app"},
    "page_view": {"sku": "s-1", "category": "books", "url": "https://shop.example/p/s-1"},
    "ticket.opened": {"ticket_id": "t-1", "priority": "high", "category": "delivery", "text": "Where is my parcel?"},
    "ticket.updated": {"ticket_id": "t-1", "status": "in_progress", "agent_id": "a-7", "agent_response": True},
    "ticket.closed": {"ticket_id": "t-1", "resolution": "parcel delivered"},
    "survey.response": {"survey_id": "nps-2026q4", "nps": 9, "comment": "fast delivery"},
    "customer.upserted": {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "birthday": "1990-12-10",
        "region": "EU",
        "timezone": "Europe/London",
        "erp_id": "erp-42",
    },
    "consent.changed": {"channel": "email", "granted": True},
}

EXAMPLE_TIME = "2026-11-20T10:00:00Z"


def flat_example(event_type: str, event_id: str = "evt-123", customer_id: str = "c-42") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "customer_id": customer_id,
        "time": EXAMPLE_TIME,
        "data": copy.deepcopy(EXAMPLE_DATA[event_type]),  # callers may edit their copy
    }


def structured_example(event_type: str, event_id: str = "evt-123", customer_id: str = "c-42") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "shop-eu",
        "type": event_type,
        "subject": customer_id,
        "time": EXAMPLE_TIME,
        "datacontenttype": "application/json",
        "data": copy.deepcopy(EXAMPLE_DATA[event_type]),  # callers may edit their copy
    }
