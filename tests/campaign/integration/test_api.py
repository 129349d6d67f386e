"""The whole campaign app: HTTP API, and Kafka in / sender out through the real broker."""

from __future__ import annotations

import asyncio
import math
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, select

from libs.common.db import create_engine
from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher
from libs.common.topics import CUSTOMER_EVENTS, PROFILE_CHANGES, SCORE_CHANGES
from services.campaign.adapters.tables import assignments, customer_facts, purchases
from services.campaign.bootstrap import create_app
from services.campaign.settings import campaign_settings
from tests.campaign.integration.harness import WebhookServer
from tests.conftest import Isolation, running
from tests.derived import complete
from tests.problems import assert_problem
from tests.waiting import eventually

serve = asynccontextmanager(running)
READER = {"Authorization": "Bearer test-reader-key"}
STAGE_SMS = {
    "name": "win back",
    "trigger": {"kind": "stage_entered", "stage": "at_risk"},
    "actions": [{"type": "message", "channel": "sms", "body": "We miss you, {name}"}],
    "status": "active",
}


async def test_invalid_definitions_answer_422_naming_the_field(isolated: Isolation, auth: dict[str, str]) -> None:
    settings = campaign_settings(isolated.settings("campaign"))
    async with serve(create_app(settings)) as client:
        bad_holdout = {**STAGE_SMS, "holdout_percent": 80}
        response = await client.post("/v1/campaigns", json=bad_holdout, headers=auth)
        assert_problem(response, 422, "holdout_percent")

        email_without_subject = {**STAGE_SMS, "actions": [{"type": "message", "channel": "email", "body": "x"}]}
        response = await client.post("/v1/campaigns", json=email_without_subject, headers=auth)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "actions[0].message.subject"

        response = await client.post("/v1/campaigns", json=STAGE_SMS, headers=READER)
        assert response.status_code == 403


async def test_crud_and_ab_report_arithmetic(isolated: Isolation, auth: dict[str, str]) -> None:
    settings = campaign_settings(isolated.settings("campaign"))
    async with serve(create_app(settings)) as client:
        ab = {**STAGE_SMS, "variants": [{"name": "a"}], "holdout_percent": 20, "conversion_window_days": 7}
        created = await client.post("/v1/campaigns", json=ab, headers=auth)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
        paused = await client.put(f"/v1/campaigns/{campaign_id}", json={**ab, "status": "paused"}, headers=auth)
        assert paused.json()["status"] == "paused"
        listed = await client.get("/v1/campaigns", headers=auth)
        assert {c["id"] for c in listed.json()["items"]} == {"builtin-top-tier-welcome", campaign_id}

        # Fixed example: holdout 10 customers, 2 converted; variant a 10 customers, 5 converted.
        start = datetime(2026, 1, 5, tzinfo=UTC)
        rows = [("holdout", f"h{n}", n < 2) for n in range(10)] + [("a", f"a{n}", n < 5) for n in range(10)]
        engine = create_engine(settings)
        async with engine.begin() as connection:
            await connection.execute(
                insert(assignments),
                [
                    {"campaign_id": campaign_id, "customer_id": c, "variant": v, "assigned_at": start}
                    for v, c, _ in rows
                ],
            )
            bought = [
                {"customer_id": c, "order_id": f"o-{c}", "amount": 10, "purchased_at": start + timedelta(days=3)}
                for _, c, converted in rows
                if converted
            ]
            # Outside the window, before and after: not conversions.
            bought += [
                {"customer_id": "h9", "order_id": "early", "amount": 10, "purchased_at": start - timedelta(days=1)},
                {"customer_id": "a9", "order_id": "late", "amount": 10, "purchased_at": start + timedelta(days=8)},
            ]
            await connection.execute(insert(purchases), bought)
        await engine.dispose()

        report = (await client.get(f"/v1/campaigns/{campaign_id}/report", headers=auth)).json()
        holdout, a = report["variants"]
        assert (holdout["variant"], holdout["audience"], holdout["converted"]) == ("holdout", 10, 2)
        assert (a["variant"], a["audience"], a["converted"], a["sent"]) == ("a", 10, 5, 0)
        # Worked by hand: p1 = .5, p0 = .2; Wald CI with the unpooled SE, z-test with the pooled SE.
        assert math.isclose(a["conversion_rate"], 0.5) and math.isclose(holdout["conversion_rate"], 0.2)
        assert math.isclose(a["uplift"], 0.3)
        se = math.sqrt(0.5 * 0.5 / 10 + 0.2 * 0.8 / 10)  # 0.20248
        assert math.isclose(a["ci_low"], 0.3 - 1.959964 * se, abs_tol=1e-5)
        assert math.isclose(a["ci_high"], 0.3 + 1.959964 * se, abs_tol=1e-5)
        z = 0.3 / math.sqrt(0.35 * 0.65 * (1 / 10 + 1 / 10))  # pooled rate 7/20
        assert math.isclose(a["z"], z, rel_tol=1e-9)
        assert math.isclose(a["p_value"], math.erfc(z / math.sqrt(2)), rel_tol=1e-6)  # about 0.1596
        assert holdout["uplift"] is None

        assert (await client.delete(f"/v1/campaigns/{campaign_id}", headers=auth)).status_code == 204
        assert (await client.get(f"/v1/campaigns/{campaign_id}", headers=auth)).status_code == 404
        # Every change of a campaign is in the audit trail, with the key that made it.
        trail = (await client.get("/v1/audit", headers=auth)).json()["items"]
        changes = [(r["action"], r["target"], r["details"]) for r in trail if r["target"] == campaign_id]
        assert changes == [
            ("campaign.changed", campaign_id, {"change": change}) for change in ("created", "replaced", "deleted")
        ]


async def test_events_in_coupons_and_messages_out(isolated: Isolation, auth: dict[str, str]) -> None:
    async with WebhookServer() as gateway:
        settings = campaign_settings(isolated.settings("campaign")).model_copy(
            # Live mode guards use the wall clock: no quiet hours, so the test passes at any hour.
            update={
                "sms_webhook_url": gateway.url,
                "sender_poll_interval_s": 0.05,
                "quiet_hours_start": time(0),
                "quiet_hours_end": time(0),
            }
        )
        async with serve(create_app(settings)) as client:
            created = await client.post("/v1/campaigns", json=STAGE_SMS, headers=auth)
            assert created.status_code == 201
            publisher = Publisher(settings)
            await publisher.start()
            try:
                now = datetime.now(UTC).replace(hour=12)  # inside waking hours in UTC
                profile = {"metrics": {"name": "Cy", "phone": "+15550101", "consents": {"sms": True}}}
                events: list[tuple[str, str, str, dict[str, Any]]] = [
                    (CUSTOMER_EVENTS, "purchase", "c-9", {"order_id": "o-1", "amount": 1200.0, "currency": "USD"}),
                    (SCORE_CHANGES, "threshold.crossed", "c-9", {"kind": "tier_up", "old": "medium", "new": "high"}),
                    ("profile-changes", "profile.updated", "c-9", profile),
                ]
                for n, (topic, type_, subject, data) in enumerate(events):
                    await publisher.publish(
                        publisher.topic(topic),
                        CloudEvent(f"api-{n}", "test", type_, subject, now, complete(type_, data)),
                    )

                async def coupons() -> list[dict[str, Any]]:
                    items = (await client.get("/v1/customers/c-9/actions", headers=READER)).json()["items"]
                    return [item for item in items if item["kind"] == "coupon"]

                [coupon] = await eventually(coupons)
                assert coupon["details"]["code"].startswith("RTN-")
                looked_up = await client.get(f"/v1/coupons/{coupon['details']['code']}", headers=READER)
                assert looked_up.json()["campaign_id"] == "builtin-top-tier-welcome"

                async def loyalty() -> dict[str, Any] | None:
                    body = (await client.get("/v1/customers/c-9/loyalty", headers=READER)).json()
                    return body if body["points"] else None

                assert (await eventually(loyalty)) | {"updated_at": None} == {
                    "customer_id": "c-9",
                    "points": 1200,
                    "level": "silver",
                    "rolling_12m_spend": 1200.0,
                    "updated_at": None,
                }

                # Topics are consumed independently: the consent must be in before the stage change.
                engine = create_engine(settings)

                async def has_facts() -> bool:
                    async with engine.connect() as connection:
                        name = await connection.scalar(
                            select(customer_facts.c.name).where(customer_facts.c.customer_id == "c-9")
                        )
                    return name == "Cy"

                await eventually(has_facts)
                await engine.dispose()
                crossing = {"kind": "stage_changed", "old": "active", "new": "at_risk"}
                await publisher.publish(
                    publisher.topic(SCORE_CHANGES),
                    CloudEvent(
                        "api-9", "test", "threshold.crossed", "c-9", now, complete("threshold.crossed", crossing)
                    ),
                )
                await eventually(lambda: asyncio.sleep(0, result=gateway.calls))
                await asyncio.sleep(0.5)  # time for a (wrong) second send
                assert [body["text"] for _, body in gateway.calls] == ["We miss you, Cy"]
            finally:
                await publisher.stop()


async def test_an_aliased_id_brings_its_loyalty_to_the_customer_over_kafka(isolated: Isolation) -> None:
    """The purchase (customer-events) and profile's alias (profile-changes) may be consumed in either order."""
    settings = campaign_settings(isolated.settings("campaign"))
    async with serve(create_app(settings)) as client:
        publisher = Publisher(settings)
        await publisher.start()
        try:
            now = datetime.now(UTC)
            purchase = {"order_id": "o-erp-1", "amount": 300.0, "currency": "USD"}
            aliased = {"customer_id": "c-7", "alias_id": "erp-7"}
            await publisher.publish(
                publisher.topic(CUSTOMER_EVENTS), CloudEvent("alias-1", "test", "purchase", "erp-7", now, purchase)
            )
            await publisher.publish(
                publisher.topic(PROFILE_CHANGES), CloudEvent("alias-2", "test", "profile.aliased", "c-7", now, aliased)
            )

            async def loyalty_of_c7() -> dict[str, Any] | None:
                body = (await client.get("/v1/customers/c-7/loyalty", headers=READER)).json()
                return body if body["points"] else None

            assert (await eventually(loyalty_of_c7))["points"] == 300
            # Asked by the id the ERP knows, the answer is the customer's.
            by_erp_id = (await client.get("/v1/customers/erp-7/loyalty", headers=READER)).json()
            assert (by_erp_id["customer_id"], by_erp_id["points"]) == ("c-7", 300)
        finally:
            await publisher.stop()
