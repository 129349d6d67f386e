"""The profile batch handler and HTTP API on a real PostgreSQL (no broker: see harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from libs.common.consumer import PoisonEvent
from libs.common.envelope import CloudEvent
from tests.conftest import Isolation
from tests.problems import assert_problem
from tests.profile.unit.helpers import EXAMPLE_EVENTS

from .harness import AUTH, READER, Harness, by_subject, cloud, event, harness


@pytest.fixture
async def h(isolated: Isolation) -> AsyncIterator[Harness]:
    async for value in harness(isolated):
        yield value


def t(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def purchase(event_id: str, customer: str, at: datetime, amount: float, category: str = "books") -> CloudEvent:
    return event(
        event_id,
        "purchase",
        customer,
        at,
        order_id=f"o-{event_id}",
        amount=amount,
        currency="USD",
        items=[{"sku": "s-1", "category": category, "quantity": 1, "price": amount}],
    )


async def test_hand_computed_aggregates_and_late_events(h: Harness) -> None:
    events = [cloud(e) for e in EXAMPLE_EVENTS]
    # Newest first, in two batches: every event after the first arrives "late".
    late_order = sorted(events, key=lambda e: e.time, reverse=True)
    await h.deliver(*late_order[:9])
    await h.deliver(*late_order[9:])
    # The same history in order, as another person (other identifiers, or identity resolution would merge them).
    ordered_events = [cloud(e, subject="c-ordered", prefix="o-") for e in sorted(events, key=lambda e: e.time)]
    for copy in ordered_events:
        if copy.type == "customer.upserted":
            copy.data.update(email="bo@example.com", phone="+1 555 010 9999", erp_id="E2")
    await h.deliver(*ordered_events)

    view = await h.customer("c-1")
    orders = view["orders"]
    assert orders["count"] == 3
    assert orders["total_spend"] == 95.0  # 30 + 15 + 50
    assert orders["average_spend"] == pytest.approx(31.6667)
    assert orders["first_purchase_at"] == "2024-03-01T10:00:00Z"
    assert orders["last_purchase_at"] == "2024-03-31T10:00:00Z"
    # books: o1 (2 x 10) + o2 (1 x 15); toys: o1 (1 x 10) + o3 (5 x 10)
    assert orders["categories"]["books"] == {"orders": 2, "quantity": 3, "spend": 35.0}
    assert orders["categories"]["toys"] == {"orders": 2, "quantity": 6, "spend": 60.0}
    assert orders["intervals"] == {"count": 2, "mean_days": 15.0, "median_days": 15.0, "std_days": 5.0}
    assert view["refunds"]["amount"] == 10.0
    assert view["logins"]["count"] == 3 and view["logins"]["channels"] == {"app": 1, "web": 2}
    assert view["tickets"]["open_count"] == 1 and view["tickets"]["open_ids"] == ["T2"]
    assert view["tickets"]["closed_count"] == 1
    assert view["feedback"]["last_nps"] == 9
    assert view["consents"]["email"]["granted"] is True
    assert view["coupons"]["redeemed"] == ["SAVE5"]
    assert view["identities"]["email"] == "ann@example.com"
    assert view["identities"]["phone"] == "+15550100000"
    assert view["attributes"]["name"] == "Ann" and view["attributes"]["region"] == "EU"
    assert view["metrics"]["purchase_count"] == 3 and view["metrics"]["net_spend"] == 85.0
    assert view["event_count"] == 17 and view["merged_into"] is None

    ordered = await h.customer("c-ordered")
    for section in ("orders", "refunds", "logins", "tickets", "feedback", "attributes", "consents", "coupons"):
        assert ordered[section] == view[section], section
    other_person = {"customer_id": "c-ordered", "email": "bo@example.com", "phone": "+15550109999"}
    assert ordered["metrics"] == {**view["metrics"], **other_person}

    updates = by_subject(await h.emitted("profile.updated"))
    # One profile.updated per customer per batch, carrying the scoring metrics of docs/events.md.
    assert len(updates["c-1"]) == 2 and len(updates["c-ordered"]) == 1
    last = updates["c-1"][-1]
    # Money travels as a decimal string (libs.common.contracts.Money).
    assert Decimal(last["metrics"]["total_spend"]) == 95 and last["metrics"]["purchase_count"] == 3
    assert last["metrics"]["email"] == "ann@example.com" and last["metrics"]["consents"] == {"email": True}
    assert last["cause"]["type"] in {e.type for e in late_order[9:]}
    assert "orders.count" in updates["c-ordered"][0]["changed"]


async def test_redelivery_changes_nothing(h: Harness) -> None:
    first = purchase("r1", "c-r", t("2024-05-01"), 40)
    second = purchase("r2", "c-r", t("2024-05-02"), 60)
    await h.deliver(first, second)
    await h.deliver(first, second)  # same ce_ids: the inbox drops them
    await h.deliver(first, inbox=False)  # past the inbox (lost inbox row): the profile's applied-event list holds
    view = await h.customer("c-r")
    assert view["orders"]["count"] == 2 and view["orders"]["total_spend"] == 100.0
    assert len(await h.emitted("profile.updated")) == 1
    timeline = (await h.client.get("/v1/customers/c-r/timeline", headers=READER)).json()
    assert [item["id"] for item in timeline["items"]] == ["r2", "r1"]


async def test_identity_attach_and_merge(h: Harness) -> None:
    await h.deliver(
        event("m1", "customer.upserted", "c-a", t("2024-01-01"), email="X@example.com"),
        purchase("m2", "c-a", t("2024-01-05"), 10),
    )
    await h.deliver(
        event("m3", "customer.upserted", "c-b", t("2024-02-01"), phone="+44 20 7946 0000"),
        purchase("m4", "c-b", t("2024-02-05"), 20),
    )
    # A third id carrying both identifiers proves c-a and c-b are one person: the oldest profile survives.
    await h.deliver(
        event("m5", "customer.upserted", "c-c", t("2024-03-01"), email="x@example.com", phone="00442079460000")
    )
    merged = await h.emitted("profile.merged")
    assert [(subject, data) for _, subject, data in merged] == [("c-a", {"survivor_id": "c-a", "merged_id": "c-b"})]

    for old_id in ("c-b", "c-c"):
        view = await h.customer(old_id)
        assert view["customer_id"] == "c-a" and view["merged_into"] == "c-a"
    view = await h.customer("c-a")
    assert view["orders"]["count"] == 2 and view["orders"]["total_spend"] == 30.0
    assert view["identities"]["phone"] == "+442079460000" and "c-b" in view["merged_from"]

    # Later events of a merged id land on the survivor; an id matching by email alone attaches to it.
    await h.deliver(
        purchase("m6", "c-b", t("2024-03-02"), 5),
        event("m7", "customer.upserted", "c-d", t("2024-03-03"), email="x@example.com", name="Xi"),
        purchase("m8", "c-d", t("2024-03-04"), 7),
    )
    view = await h.customer("c-d")
    assert view["customer_id"] == "c-a" and view["orders"]["count"] == 4 and view["attributes"]["name"] == "Xi"
    timeline = (await h.client.get("/v1/customers/c-b/timeline", headers=READER, params={"limit": 100})).json()
    assert sorted(item["id"] for item in timeline["items"]) == ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]
    found = (await h.client.get("/v1/customers", params={"email": "X@Example.com"}, headers=READER)).json()
    assert [item["customer_id"] for item in found["items"]] == ["c-a"]
    # The ids that had no profile of their own are announced too: other services may hold something under them.
    aliased = await h.emitted("profile.aliased")
    assert [(subject, data) for _, subject, data in aliased] == [
        ("c-a", {"customer_id": "c-a", "alias_id": "c-c"}),
        ("c-a", {"customer_id": "c-a", "alias_id": "c-d"}),
    ]


async def test_segments_enter_leave_and_paging(h: Harness) -> None:
    for n in range(5):
        await h.deliver(
            purchase(f"s{n}a", f"c-{n}", t("2024-06-01"), 10), purchase(f"s{n}b", f"c-{n}", t("2024-06-02"), 10)
        )
    await h.deliver(purchase("s9", "c-9", t("2024-06-01"), 10))
    await h.clear_outbox()

    created = await h.client.post(
        "/v1/segments",
        json={"id": "repeat", "name": "Repeat buyers", "condition": {"field": "orders.count", "op": ">=", "value": 2}},
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    assert created.json()["membership"] == {"members": 5, "entered": 5, "left": 0}
    entered = by_subject(await h.emitted("profile.updated"))
    assert sorted(entered) == [f"c-{n}" for n in range(5)]
    assert entered["c-0"][0]["segments_entered"] == ["repeat"] and entered["c-0"][0]["changed"] == ["segments"]

    pages: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await h.client.get("/v1/segments/repeat/members", params=params, headers=READER)).json()
        pages += [item["customer_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [f"c-{n}" for n in range(5)]

    # A second purchase moves c-9 in: the consumer reports it on its own profile.updated.
    await h.clear_outbox()
    await h.deliver(purchase("s10", "c-9", t("2024-06-03"), 10))
    ((_, subject, data),) = await h.emitted("profile.updated")
    assert subject == "c-9" and data["segments_entered"] == ["repeat"] and data["segments_left"] == []
    found = (await h.client.get("/v1/customers", params={"segment": "repeat"}, headers=READER)).json()
    assert len(found["items"]) == 6

    await h.clear_outbox()
    changed = await h.client.put(
        "/v1/segments/repeat", json={"condition": {"field": "orders.total_spend", "op": ">", "value": 25}}, headers=AUTH
    )
    assert changed.json()["membership"] == {"members": 0, "entered": 0, "left": 6}
    assert all(data["segments_left"] == ["repeat"] for _, _, data in await h.emitted("profile.updated"))


async def test_invalid_condition_names_the_bad_part(h: Harness) -> None:
    condition = {
        "all": [{"field": "orders.count", "op": ">=", "value": 3}, {"field": "region", "op": "~", "value": "e"}]
    }
    response = await h.client.post("/v1/segments", json={"name": "bad", "condition": condition}, headers=AUTH)
    assert_problem(response, 422, "/condition/all/1/op")
    reader = await h.client.post("/v1/segments", json={"name": "x", "condition": condition}, headers=READER)
    assert reader.status_code == 403


async def test_tags_search_and_timeline_paging(h: Harness) -> None:
    base = t("2024-07-01")
    await h.deliver(*(event(f"p{n}", "login", "c-t", base + timedelta(hours=n), channel="web") for n in range(7)))
    added = await h.client.put("/v1/customers/c-t/tags/vip", headers=AUTH)
    assert added.json() == {"customer_id": "c-t", "tags": ["vip"]}
    data = (await h.emitted("profile.updated"))[-1][2]
    assert data["changed"] == ["tags"] and data["metrics"]["tags"] == ["vip"]
    found = (await h.client.get("/v1/customers", params={"tag": "vip"}, headers=READER)).json()
    assert [item["customer_id"] for item in found["items"]] == ["c-t"]
    assert (await h.client.put("/v1/customers/c-t/tags/vip", headers=READER)).status_code == 403
    assert (await h.client.delete("/v1/customers/c-t/tags/vip", headers=AUTH)).json()["tags"] == []

    seen: list[str] = []
    cursor = None
    for _ in range(4):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await h.client.get("/v1/customers/c-t/timeline", params=params, headers=READER)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{n}" for n in reversed(range(7))]
    bad = await h.client.get("/v1/customers/c-t/timeline", params={"cursor": "nope"}, headers=READER)
    assert bad.status_code == 422
    assert (await h.client.get("/v1/customers/nobody", headers=READER)).status_code == 404


async def test_erasure(h: Harness) -> None:
    await h.deliver(
        event("x1", "customer.upserted", "c-e", t("2024-01-01"), email="e@example.com", name="Eve"),
        purchase("x2", "c-e", t("2024-01-02"), 10),
    )
    await h.deliver(event("x3", "customer.upserted", "c-e2", t("2024-01-03"), email="e@example.com"))
    assert (await h.client.delete("/v1/customers/c-e", headers=READER)).status_code == 403
    erased = await h.client.delete("/v1/customers/c-e", headers=AUTH)
    assert erased.status_code == 200
    assert erased.json()["erased_ids"] == ["c-e", "c-e2"]
    assert sorted(subject for _, subject, _ in await h.emitted("customer.erased")) == ["c-e", "c-e2"]
    assert all(data == {"customer_id": s} for _, s, data in await h.emitted("customer.erased"))
    for gone in ("c-e", "c-e2"):
        assert (await h.client.get(f"/v1/customers/{gone}", headers=READER)).status_code == 404
    assert (await h.client.get("/v1/customers", params={"email": "e@example.com"}, headers=READER)).json()[
        "items"
    ] == []

    # A late event from before the erasure must not bring the person back; a newer one starts afresh.
    await h.deliver(event("x4", "customer.upserted", "c-e", t("2024-01-04"), email="e@example.com"))
    assert (await h.client.get("/v1/customers/c-e", headers=READER)).status_code == 404
    await h.deliver(purchase("x5", "c-e", datetime.now(UTC) + timedelta(seconds=5), 3))
    fresh = await h.customer("c-e")
    assert fresh["orders"]["count"] == 1 and fresh["identities"]["email"] is None


async def test_bad_event_data_is_poison(h: Harness) -> None:
    bad = event("bad1", "purchase", "c-p", t("2024-01-01"), order_id="o", amount=-5, currency="USD")
    with pytest.raises(PoisonEvent, match="bad1"):
        await h.deliver(bad)
    # Unknown types are ignored, not poison: the topic may carry types newer than this service.
    await h.deliver(event("u1", "future.thing", "c-p", t("2024-01-01")))
    assert (await h.client.get("/v1/customers/c-p", headers=READER)).status_code == 404


async def test_documents_over_the_toast_threshold_are_stored_uncompressed(h: Harness) -> None:
    """Migration 0002: compressing every rewritten document cost PostgreSQL a sixth of its CPU under the consumer."""
    await h.deliver(*[cloud(e) for e in EXAMPLE_EVENTS])
    async with h.runtime.sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT pg_column_size(state) AS stored, pg_column_compression(state) AS method "
                    "FROM profile.customers WHERE customer_id = 'c-1'"
                )
            )
        ).one()
    assert row.stored > 2100  # past the 2 kB threshold where PostgreSQL would otherwise compress
    assert row.method is None


async def test_profile_pages_keep_room_for_in_place_updates(h: Harness) -> None:
    """Migration 0005: with full pages every upsert re-indexed the row in five indexes (HOT updates need room)."""
    async with h.runtime.sessions() as session:
        options = await session.scalar(
            text("SELECT reloptions FROM pg_class WHERE oid = 'profile.customers'::regclass")
        )
    assert "fillfactor=70" in options and "toast_tuple_target=8160" in options


async def test_a_cached_profile_is_not_read_again_and_a_stale_cache_entry_falls_back_to_the_database(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = h.consumer.cache
    await h.deliver(purchase("s1", "c-s", t("2024-05-01"), 10))
    await h.deliver(purchase("s2", "c-s", t("2024-05-02"), 20))
    assert (cache.hits, cache.misses) == (1, 0)  # the second batch found the profile it saved in the cache

    # The entry no longer matches what lock_profiles was told the cache holds (as after a rolled-back batch of
    # another partition): the row comes back without its document and the consumer must read it itself.
    held = cache.held_revs(["c-s"])
    cache.put("c-s", held["c-s"] + 1, *cache._entries["c-s"][1:])

    def stale_held_revs(customer_ids: Iterable[str]) -> dict[str, int]:
        return held

    with monkeypatch.context() as patch:
        patch.setattr(cache, "held_revs", stale_held_revs)
        await h.deliver(purchase("s3", "c-s", t("2024-05-03"), 30))
    view = await h.customer("c-s")
    assert view["orders"]["count"] == 3 and view["orders"]["total_spend"] == 60.0
    assert (cache.hits, cache.misses) == (1, 1)


async def test_a_nul_character_in_the_url_is_a_422_naming_where_not_a_500(h: Harness) -> None:
    """PostgreSQL text cannot hold U+0000: before, `/v1/customers/%00` reached the database and failed there."""
    for url, field in (("/v1/customers/c%00x", "path"), ("/v1/customers?email=a%00b", "query.email")):
        response = await h.client.get(url, headers=READER)
        assert [error["code"] for error in assert_problem(response, 422, field)] == ["nul_character"]
