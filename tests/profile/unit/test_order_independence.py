"""Late and reordered events, and merges, must give exactly the state of in-order processing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.profile.domain import ProfileEvent, merge_states

from .helpers import build, ev, item, t

BASE = t("2024-01-01")
SKUS = {"s1": "books", "s2": "books", "s3": "toys", "s4": "garden"}

# Coarse times (hour 0 or 12) make ties common; days 0..250 exercise >150-day pruning, and the extra weight on
# the last 40 days puts several events inside the 30/60-day browsing and rolling windows.
_days = st.one_of(st.integers(0, 250), st.integers(210, 250))
_times = st.builds(lambda d, h: BASE + timedelta(days=d, hours=h), _days, st.sampled_from([0, 12]))


def _purchase_data(skus: list[str], qty: int, coupon: str | None, currency: str) -> dict[str, Any]:
    items = [item(sku, SKUS[sku], qty, "2.5") for sku in skus]
    amount = Decimal("2.5") * qty * len(items) if items else Decimal("7")
    data: dict[str, Any] = {"order_id": "o", "amount": str(amount), "currency": currency, "items": items}
    if coupon:
        data["coupon_code"] = coupon
    return data


_payloads = st.one_of(
    st.builds(
        lambda skus, q, c, cur: ("purchase", _purchase_data(skus, q, c, cur)),
        st.lists(st.sampled_from(sorted(SKUS)), max_size=3),
        st.integers(1, 3),
        st.sampled_from([None, "C1", "C2"]),
        st.sampled_from(["USD", "EUR"]),
    ),
    st.builds(lambda a: ("refund", {"order_id": "o", "amount": a, "currency": "USD"}), st.sampled_from(["1", "2.25"])),
    st.builds(lambda c: ("login", {"channel": c}), st.sampled_from(["web", "app", "pos"])),
    st.builds(lambda s: ("page_view", {"sku": s, "category": SKUS[s]}), st.sampled_from(sorted(SKUS))),
    st.builds(
        lambda tid, p: ("ticket.opened", {"ticket_id": tid, "priority": p}),
        st.sampled_from(["T1", "T2"]),
        st.sampled_from(["low", "high"]),
    ),
    st.builds(
        lambda tid, s, p: ("ticket.updated", {"ticket_id": tid, "status": s, "priority": p}),
        st.sampled_from(["T1", "T2"]),
        st.sampled_from([None, "in_progress", "resolved", "open"]),
        st.sampled_from([None, "urgent"]),
    ),
    st.builds(lambda tid: ("ticket.closed", {"ticket_id": tid}), st.sampled_from(["T1", "T2"])),
    st.builds(lambda n, c: ("survey.response", {"nps": n, "csat": c}), st.integers(0, 10), st.sampled_from([None, 2])),
    st.builds(
        lambda r, e: ("customer.upserted", {"region": r, "email": e}),
        st.sampled_from(["EU", "US", None]),
        st.sampled_from(["a@x.io", "b@x.io", None]),
    ),
    st.builds(
        lambda ch, g: ("consent.changed", {"channel": ch, "granted": g}),
        st.sampled_from(["email", "sms"]),
        st.booleans(),
    ),
)


@st.composite
def _event_lists(draw: st.DrawFn) -> list[ProfileEvent]:
    raw = draw(st.lists(st.tuples(_times, _payloads), min_size=1, max_size=30))
    return [ev(f"e{i:03d}", kind, at, **data) for i, (at, (kind, data)) in enumerate(raw)]


_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(st.data())
def test_shuffled_order_gives_identical_state(data: st.DataObject) -> None:
    events = data.draw(_event_lists())
    in_order = build(sorted(events, key=lambda e: (e.time, e.id)))
    shuffled = build(data.draw(st.permutations(events)))
    assert shuffled.to_dict() == in_order.to_dict()


@_settings
@given(st.data())
def test_merge_equals_single_profile_of_all_events(data: st.DataObject) -> None:
    events = data.draw(_event_lists())
    mask = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    a = build([e for e, left in zip(events, mask, strict=True) if left], customer_id="a")
    b = build([e for e, left in zip(events, mask, strict=True) if not left], customer_id="b")
    whole = build(events, customer_id="a").to_dict()
    merged = merge_states(a, b).to_dict()
    assert merged.pop("merged_from") == ["b"]
    whole.pop("merged_from")
    assert merged == whole


def test_out_of_order_example_matches_in_order() -> None:
    # A concrete case of the property above: a close that arrives before its open, and a late purchase.
    events = [
        ev("a", "ticket.opened", "2024-01-01", ticket_id="T1"),
        ev("b", "ticket.closed", "2024-01-02", ticket_id="T1"),
        ev("c", "purchase", "2024-01-10", order_id="o1", amount="5", currency="USD"),
        ev("d", "purchase", "2024-01-05", order_id="o2", amount="7", currency="EUR"),
    ]
    forward = build(events)
    backward = build(list(reversed(events)))
    assert forward.to_dict() == backward.to_dict()
    assert backward.tickets.open_count == 0
    assert backward.orders.currency == "USD"
    assert backward.orders.intervals.mean_days == 5.0
