from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.profile.domain import (
    InvalidEvent,
    ProfileState,
    apply,
    derived_metrics,
    erase_pii,
    new_profile,
    set_tags,
    viewed_not_bought,
)

from .helpers import EXAMPLE_AS_OF, EXAMPLE_EVENTS, build, ev, t


@pytest.fixture(scope="module")
def example() -> ProfileState:
    return build(EXAMPLE_EVENTS)


def test_identities_and_attributes(example: ProfileState) -> None:
    assert example.identities.email == "ann@example.com"
    assert example.identities.phone == "+15550100000"
    assert example.identities.erp_id == "E1"
    assert example.identities.shop_id is None
    assert example.attributes.name == "Ann"
    assert example.attributes.region == "EU"
    assert example.first_seen == t("2024-01-01")
    assert example.last_seen == t("2024-04-02")
    assert example.event_count == 17


def test_order_aggregates(example: ProfileState) -> None:
    orders = example.orders
    assert orders.count == 3
    assert orders.total_spend == Decimal("95")
    assert orders.average_spend == Decimal("31.6667")
    assert orders.first_purchase_at == t("2024-03-01T10:00")
    assert orders.last_purchase_at == t("2024-03-31T10:00")
    assert orders.currency == "USD"
    assert orders.currencies == ["USD"]
    books, toys = orders.categories["books"], orders.categories["toys"]
    assert (books.orders, books.quantity, books.spend) == (2, 3, Decimal("35"))
    assert (toys.orders, toys.quantity, toys.spend) == (2, 6, Decimal("60"))
    assert orders.purchase_dates == [date(2024, 3, 1), date(2024, 3, 11), date(2024, 3, 31)]
    assert orders.intervals.count == 2
    assert orders.intervals.mean_days == 15.0
    assert orders.intervals.median_days == 15.0
    assert orders.intervals.std_days == 5.0
    assert example.coupons.redeemed == ["SAVE5"]
    assert example.coupons.orders_with_coupon == 1


def test_refunds_logins_tickets_feedback_consents(example: ProfileState) -> None:
    assert example.refunds.count == 1
    assert example.refunds.amount == Decimal("10")
    assert example.refunds.last_refund_at == t("2024-04-01")
    assert example.logins.count == 3
    assert example.logins.channels == {"app": 1, "web": 2}
    assert example.logins.first_login_at == t("2024-03-05")
    assert example.logins.last_login_at == t("2024-03-30")
    tickets = example.tickets
    assert (tickets.open_count, tickets.closed_count, tickets.open_ids) == (1, 1, ["T2"])
    assert (tickets.last_ticket_id, tickets.last_ticket_at, tickets.last_ticket_priority) == (
        "T2",
        t("2024-03-25"),
        "normal",
    )
    assert tickets.items["T1"].status == "closed"
    assert tickets.items["T1"].priority == "high"
    assert (example.feedback.last_nps, example.feedback.last_nps_at) == (9, t("2024-04-02"))
    assert example.feedback.last_csat is None
    assert example.consents["email"].granted is True
    assert example.browsing.page_views == 4


def test_derived_metrics_of_example(example: ProfileState) -> None:
    m = derived_metrics(example, EXAMPLE_AS_OF)
    assert m["purchase_count"] == 3
    assert m["total_spend"] == 95.0
    assert m["net_spend"] == 85.0
    assert m["typical_interval_days"] == 15.0
    assert m["last_login_at"] == t("2024-03-30")
    # Window [03-07, 04-05]: the app login on 03-20 and the web login on 03-30.
    assert m["logins_30d"] == 2
    assert m["logins_30d_by_channel"] == {"app": 1, "web": 1}
    assert m["logins_90d"] == 3
    # Baseline [2023-12-08, 03-06] is only covered from first_seen 01-01: 66 days, so 1 login -> 30/66 per 30 days.
    assert m["baseline_days"] == 66
    assert m["login_ratio_30_90"] == pytest.approx(2 / (1 * 30 / 66))
    assert m["purchase_ratio_30_90"] == pytest.approx(2 / (1 * 30 / 66))
    assert m["spend_ratio_30_90"] == pytest.approx(65 / (30 * 30 / 66))
    assert m["open_tickets"] == 1
    assert m["last_nps"] == 9
    assert m["last_csat"] is None
    # books and toys both have 2 orders; toys wins on spend (60 > 35).
    assert m["favourite_category"] == "toys"
    assert m["region"] == "EU"
    assert m["tags"] == []
    assert m["days_since_last_purchase"] == pytest.approx(4 + 14 / 24)


def test_viewed_not_bought(example: ProfileState) -> None:
    # Window (03-06, 04-05]: A was bought 03-11 and C on 03-31; B was bought only on 03-01, before the window.
    skus, categories = viewed_not_bought(example, EXAMPLE_AS_OF)
    assert skus == ["B", "D"]
    assert categories == ["garden"]


def test_redelivery_is_a_noop(example: ProfileState) -> None:
    again, changed = apply(example, EXAMPLE_EVENTS[3])
    assert again is example
    assert changed == frozenset()


def test_changed_fields_name_what_moved() -> None:
    state, changed = apply(new_profile("c-1"), ev("x1", "login", "2024-01-01", channel="pos"))
    assert {"logins.count", "logins.channels", "logins.last_login_at", "first_seen", "last_seen"} <= changed
    assert not any(name.startswith("orders.") for name in changed)
    _, changed = apply(state, ev("x2", "login", "2023-01-01", channel="pos"))
    # A late login moves the counters and first_login_at but not last_login_at.
    assert "logins.first_login_at" in changed
    assert "logins.last_login_at" not in changed


def test_unknown_type_ignored_and_bad_data_rejected() -> None:
    state = new_profile("c-1")
    same, changed = apply(state, ev("u1", "score.changed", "2024-01-01"))
    assert same is state and changed == frozenset()
    with pytest.raises(InvalidEvent):
        apply(state, ev("u2", "survey.response", "2024-01-01"))  # neither nps nor csat
    with pytest.raises(InvalidEvent):
        apply(
            state,
            ev(
                "u3",
                "purchase",
                "2024-01-01",
                order_id="o",
                amount="5",
                currency="USD",
                items=[{"sku": "s", "category": "c", "quantity": 1, "price": "4"}],
            ),
        )


def test_late_customer_upsert_does_not_overwrite_newer_value() -> None:
    state = build(
        [
            ev("n1", "customer.upserted", "2024-02-01", region="APAC"),
            ev("n2", "customer.upserted", "2024-01-01", region="EU", industry="retail"),
        ]
    )
    assert state.attributes.region == "APAC"
    assert state.attributes.industry == "retail"


def test_ticket_update_before_open_and_close() -> None:
    state = build(
        [
            ev("k3", "ticket.closed", "2024-01-03", ticket_id="T9"),
            ev("k2", "ticket.updated", "2024-01-04", ticket_id="T9", text="thanks"),
            ev("k1", "ticket.opened", "2024-01-01", ticket_id="T9", priority="urgent"),
        ]
    )
    ticket = state.tickets.items["T9"]
    assert ticket.status == "closed"
    assert ticket.opened_at == t("2024-01-01")
    assert state.tickets.open_count == 0
    assert state.tickets.last_ticket_priority == "urgent"


def test_buckets_pruned_relative_to_newest_event() -> None:
    state = build([ev("p1", "login", "2024-01-01"), ev("p2", "login", "2024-12-01")])
    assert list(state.days) == [date(2024, 12, 1)]
    assert state.logins.count == 2
    late, _ = apply(state, ev("p3", "login", "2024-02-01"))
    assert list(late.days) == [date(2024, 12, 1)]
    assert late.logins.count == 3


def test_purchase_dates_bounded_to_newest() -> None:
    start = date(2023, 1, 1)
    events = [
        ev(f"q{i}", "purchase", (t("2023-01-01") + timedelta(days=i)), order_id=f"o{i}", amount="1", currency="EUR")
        for i in range(205)
    ]
    state = build(events)
    assert len(state.orders.purchase_dates) == 200
    assert state.orders.purchase_dates[0] == start + timedelta(days=5)
    assert state.orders.intervals.count == 199
    assert state.orders.intervals.mean_days == 1.0
    assert state.orders.count == 205


def test_json_round_trip_is_lossless(example: ProfileState) -> None:
    document = json.loads(json.dumps(example.to_dict()))
    restored = ProfileState.from_dict(document)
    assert restored == example
    assert restored.to_dict() == example.to_dict()
    assert isinstance(document["orders"]["total_spend"], str)
    assert document["last_seen"].startswith("2024-04-02T00:00:00")


def test_tags() -> None:
    state, changed = set_tags(new_profile("c-1"), add=["vip", "b2b"])
    assert state.tags == ["b2b", "vip"] and changed == {"tags"}
    state, changed = set_tags(state, remove=["b2b"])
    assert state.tags == ["vip"]
    _, changed = set_tags(state, add=["vip"])
    assert changed == frozenset()


def test_erase_pii_keeps_aggregates_and_blocks_late_upserts(example: ProfileState) -> None:
    erased = erase_pii(example, t("2024-05-01"))
    assert erased.identities.email is None and erased.identities.erp_id is None
    assert erased.attributes.name is None
    assert erased.attributes.region == "EU"
    assert erased.orders.count == 3
    late, _ = apply(erased, ev("z1", "customer.upserted", "2024-04-20", email="ann@example.com"))
    assert late.identities.email is None
    back, _ = apply(erased, ev("z2", "customer.upserted", "2024-06-01", email="new@example.com"))
    assert back.identities.email == "new@example.com"
