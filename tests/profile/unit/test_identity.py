from __future__ import annotations

from decimal import Decimal

from services.profile.domain import (
    DecisionKind,
    Identifiers,
    ProfileEvent,
    identifiers_from_event,
    merge_states,
    normalise_email,
    normalise_phone,
    resolve_identity,
    set_tags,
)

from .helpers import build, ev, t


def test_normalisation() -> None:
    assert normalise_email("  Ann@Example.COM ") == "ann@example.com"
    assert normalise_email("   ") is None
    assert normalise_phone("+1 (555) 010-0000") == "+15550100000"
    assert normalise_phone("0049 30 1234567") == "+49301234567"
    assert normalise_phone("030-1234567") == "+0301234567"
    assert normalise_phone("()") is None


def test_identifiers_from_event() -> None:
    upsert = ev("i1", "customer.upserted", "2024-01-01", email="A@B.io", phone="+44 20 7946 0000", erp_id=" E9 ")
    ids = identifiers_from_event(upsert)
    assert ids == Identifiers(customer_id="c-1", email="a@b.io", phone="+442079460000", erp_id="E9")
    assert ids.present() == {"customer_id": "c-1", "email": "a@b.io", "phone": "+442079460000", "erp_id": "E9"}
    login = ProfileEvent(id="i2", type="login", subject="c-7", time=t("2024-01-01"), data={"email": "x@y.io"})
    assert identifiers_from_event(login) == Identifiers(customer_id="c-7")


def test_create_attach_merge_decisions() -> None:
    ids = Identifiers(customer_id="c-new", email="a@b.io")
    created = resolve_identity(ids, {"email": [], "customer_id": []}, {})
    assert (created.kind, created.profile_id, created.merged_ids) == (DecisionKind.CREATE, "c-new", ())

    attached = resolve_identity(ids, {"email": ["p2"], "customer_id": ["p2"]}, {"p2": t("2024-01-01")})
    assert (attached.kind, attached.profile_id) == (DecisionKind.ATTACH, "p2")

    first_seen = {"p1": t("2024-02-01"), "p2": t("2023-05-01"), "p3": None}
    merged = resolve_identity(ids, {"email": ["p1"], "phone": ["p2", "p3"], "customer_id": ["p1"]}, first_seen)
    assert merged.kind is DecisionKind.MERGE
    assert merged.profile_id == "p2"  # oldest first_seen
    assert merged.merged_ids == ("p1", "p3")
    assert ("phone", "p3") in merged.evidence


def test_survivor_ties_break_on_lowest_id() -> None:
    same = t("2024-01-01")
    decision = resolve_identity(Identifiers(customer_id="x"), {"erp_id": ["p9", "p10"]}, {"p9": same, "p10": same})
    assert decision.profile_id == "p10"
    undated = resolve_identity(Identifiers(customer_id="x"), {"shop_id": ["b", "a"]}, {})
    assert (undated.profile_id, undated.merged_ids) == ("a", ("b",))


def test_merge_states_combines_aggregates() -> None:
    survivor = build(
        [
            ev("a1", "customer.upserted", "2024-01-01", email="old@x.io", region="EU"),
            ev(
                "a2",
                "purchase",
                "2024-02-01",
                order_id="o1",
                amount="10",
                currency="USD",
                items=[{"sku": "s1", "category": "books", "quantity": 1, "price": "10"}],
            ),
            ev("a3", "login", "2024-02-02", channel="web"),
            ev("a4", "consent.changed", "2024-03-01", channel="email", granted=False),
            ev("a5", "ticket.opened", "2024-02-03", ticket_id="T1"),
        ],
        customer_id="p-old",
    )
    other = build(
        [
            ev("b1", "customer.upserted", "2024-02-15", email="new@x.io", phone="+1 555 0000"),
            ev(
                "b2",
                "purchase",
                "2024-01-15",
                order_id="o2",
                amount="20",
                currency="USD",
                items=[{"sku": "s2", "category": "books", "quantity": 2, "price": "10"}],
                coupon_code="WELCOME",
            ),
            ev("b3", "login", "2024-02-02", channel="app"),
            ev("b4", "consent.changed", "2024-02-01", channel="email", granted=True),
            ev("b5", "ticket.closed", "2024-02-04", ticket_id="T1"),
        ],
        customer_id="p-new",
    )
    other, _ = set_tags(other, add=["vip"])
    merged = merge_states(survivor, other)
    assert merged.customer_id == "p-old"
    assert merged.merged_from == ["p-new"]
    assert merged.first_seen == t("2024-01-01")
    assert merged.last_seen == t("2024-03-01")
    assert merged.event_count == 10
    assert merged.identities.email == "new@x.io"  # newer upsert wins
    assert merged.identities.phone == "+15550000"
    assert merged.attributes.region == "EU"
    assert merged.orders.count == 2
    assert merged.orders.total_spend == Decimal("30")
    assert merged.orders.first_purchase_at == t("2024-01-15")
    assert merged.orders.last_purchase_at == t("2024-02-01")
    assert merged.orders.intervals.mean_days == 17.0
    books = merged.orders.categories["books"]
    assert (books.orders, books.quantity, books.spend) == (2, 3, Decimal("30"))
    assert merged.logins.count == 2
    assert merged.logins.channels == {"app": 1, "web": 1}
    assert merged.days[t("2024-02-02").date()].logins == {"app": 1, "web": 1}
    assert merged.consents["email"].granted is False  # 03-01 beats 02-01
    assert merged.tickets.items["T1"].status == "closed"
    assert merged.tickets.open_count == 0
    assert merged.coupons.redeemed == ["WELCOME"]
    assert merged.tags == ["vip"]
