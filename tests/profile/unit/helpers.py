from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.profile.domain import ProfileEvent, ProfileState, apply_all, new_profile

CUSTOMER = "c-1"


def t(text: str) -> datetime:
    """'2024-03-01' or '2024-03-01T10:00' as a UTC datetime."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC)


def ev(event_id: str, event_type: str, time: str | datetime, **data: Any) -> ProfileEvent:
    moment = t(time) if isinstance(time, str) else time
    return ProfileEvent(id=event_id, type=event_type, subject=CUSTOMER, time=moment, data=data)


def item(sku: str, category: str, quantity: int, price: str) -> dict[str, Any]:
    return {"sku": sku, "category": category, "quantity": quantity, "price": price}


def build(events: list[ProfileEvent], customer_id: str = CUSTOMER) -> ProfileState:
    state, _ = apply_all(new_profile(customer_id), events)
    return state


# The hand-computed example used by several test modules.
EXAMPLE_EVENTS: list[ProfileEvent] = [
    ev(
        "e1",
        "customer.upserted",
        "2024-01-01",
        name="Ann",
        email="Ann@Example.COM",
        phone="+1 (555) 010-0000",
        region="EU",
        erp_id="E1",
    ),
    ev(
        "e2",
        "purchase",
        "2024-03-01T10:00",
        order_id="o1",
        amount="30",
        currency="USD",
        items=[item("A", "books", 2, "10"), item("B", "toys", 1, "10")],
    ),
    ev(
        "e3",
        "purchase",
        "2024-03-11T10:00",
        order_id="o2",
        amount="15",
        currency="USD",
        items=[item("A", "books", 1, "15")],
        coupon_code="SAVE5",
    ),
    ev(
        "e4",
        "purchase",
        "2024-03-31T10:00",
        order_id="o3",
        amount="50",
        currency="USD",
        items=[item("C", "toys", 5, "10")],
    ),
    ev("e5", "refund", "2024-04-01", order_id="o3", amount="10", currency="USD"),
    ev("e6", "login", "2024-03-05", channel="web"),
    ev("e7", "login", "2024-03-20", channel="app"),
    ev("e8", "login", "2024-03-30", channel="web"),
    ev("e9", "ticket.opened", "2024-03-02", ticket_id="T1", priority="high"),
    ev("e10", "ticket.closed", "2024-03-03", ticket_id="T1"),
    ev("e11", "ticket.opened", "2024-03-25", ticket_id="T2"),
    ev("e12", "survey.response", "2024-04-02", nps=9),
    ev("e13", "consent.changed", "2024-01-02", channel="email", granted=True),
    ev("e14", "page_view", "2024-03-28", sku="D", category="garden"),
    ev("e15", "page_view", "2024-03-20", sku="A", category="books"),
    ev("e16", "page_view", "2024-03-29", sku="C", category="toys"),
    ev("e17", "page_view", "2024-03-25", sku="B", category="toys"),
]
EXAMPLE_AS_OF = t("2024-04-05")
