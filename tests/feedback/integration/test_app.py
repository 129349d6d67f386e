"""The whole feedback app over HTTP (and, in one test, Kafka): links, analysis, problems, events in and out."""

from __future__ import annotations

import base64
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from httpx import AsyncClient

from libs.common.envelope import CloudEvent
from libs.common.kafka import Publisher
from libs.common.topics import CUSTOMER_EVENTS, FEEDBACK_EVENTS
from services.feedback.bootstrap import create_app
from services.feedback.handlers import customers as customer_handlers
from services.feedback.handlers.surveys import survey_response_handler
from tests.conftest import running
from tests.feedback.integration.harness import Harness, event
from tests.problems import assert_problem
from tests.topics import read_events
from tests.waiting import eventually

serve = asynccontextmanager(running)
READER = {"Authorization": "Bearer test-reader-key"}


def forge(token: str, **changes: Any) -> str:
    """Rewrites the payload (say, another customer) and keeps the old signature, as an attacker would."""
    payload_b64, signature = token.split(".")
    payload = orjson.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    tampered = base64.urlsafe_b64encode(orjson.dumps({**payload, **changes})).rstrip(b"=").decode()
    return f"{tampered}.{signature}"


async def link(client: AsyncClient, auth: dict[str, str], survey_id: str, customer: str) -> str:
    response = await client.post(f"/v1/surveys/{survey_id}/links", json={"customer_id": customer}, headers=auth)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def test_survey_links_reject_forgery_and_reuse_and_nps_by_tier(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    for customer, tier in (("c-h1", "high"), ("c-h2", "high"), ("c-h3", "high"), ("c-l1", "low")):
        await h.handle(customer_handlers.on_score_change, event("score.changed", customer, {"tier": tier}))
    async with serve(create_app(h.deps.settings)) as client:
        assert (await client.post("/v1/surveys", json={"name": "x", "kind": "nps"}, headers=READER)).status_code == 403
        created = await client.post(
            "/v1/surveys", json={"survey_id": "s-nps", "name": "After delivery", "kind": "nps"}, headers=auth
        )
        assert created.status_code == 201, created.text
        await client.post("/v1/surveys", json={"survey_id": "s-other", "name": "Other", "kind": "csat"}, headers=auth)
        assert_problem(await client.post("/v1/surveys", json={"name": "x", "kind": "stars"}, headers=auth), 422, "kind")

        token = await link(client, auth, "s-nps", "c-h1")
        url = "/v1/surveys/s-nps/responses"
        assert_problem(await client.post(url, json={"token": forge(token, c="c-l1"), "nps": 0}), 403, "token")
        assert_problem(await client.post(url, json={"token": "not-a-token", "nps": 0}), 400, "token")
        assert_problem(
            await client.post("/v1/surveys/s-other/responses", json={"token": token, "csat": 1}), 403, "token"
        )
        assert_problem(await client.post(url, json={"token": token, "nps": 11}), 422, "nps")
        assert_problem(await client.post(url, json={"token": token, "csat": 4}), 422, "nps")  # an NPS survey
        first = await client.post(url, json={"token": token, "nps": 10, "comment": "great, thanks"})
        assert first.status_code == 201, first.text
        assert first.json()["sentiment"] == "positive"
        assert_problem(await client.post(url, json={"token": token, "nps": 0}), 409, "token")

        for customer, score in (("c-h2", 9), ("c-h3", 3), ("c-l1", 5)):
            answer = {"token": await link(client, auth, "s-nps", customer), "nps": score}
            assert (await client.post(url, json=answer)).status_code == 201
        # An answer from a customer scoring has not graded yet arrives by event.
        await h.handle(
            survey_response_handler(h.deps), event("survey.response", "c-new", {"nps": 8, "survey_id": "s-nps"})
        )

        report = await client.get("/v1/analysis/nps", params={"group_by": "tier"}, headers=READER)
        assert report.status_code == 200, report.text
        groups = {g["group"]: g for g in report.json()["groups"]}
        assert groups["high"] == {
            "group": "high",
            "total": 3,
            "promoters": 2,
            "passives": 0,
            "detractors": 1,
            "nps": 33.33,
        }
        assert groups["low"]["nps"] == -100.0
        assert groups["unknown"]["passives"] == 1
        by_day = await client.get("/v1/analysis/nps", params={"group_by": "all"}, headers=READER)
        assert by_day.json()["groups"][0]["total"] == 5
        assert_problem(
            await client.get("/v1/analysis/nps", params={"group_by": "planet"}, headers=READER), 422, "query.group_by"
        )

        # The app's relay publishes the outbox rows (and removes them): what was emitted ends up on the topic.
        settings = h.deps.settings

        async def all_received() -> list[dict[str, Any]] | None:
            published = await read_events(settings.kafka_bootstrap, settings.topic_prefix + FEEDBACK_EVENTS, 1, 2)
            found = [event.data for event in published if event.type == "feedback.received"]
            return found if len(found) >= 5 else None

        received = await eventually(all_received)
    assert len(received) == 5  # one per recorded answer; rejected attempts emitted nothing
    assert {"score_type": "nps", "score": 10, "sentiment": "positive", "survey_id": "s-nps"} in received


async def test_tickets_over_http_themes_complaints_and_problems(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    texts = [
        ("delivery", "物流太慢了，包装也破损了"),
        ("delivery", "Delivery was slow and the package arrived damaged"),
        ("service", "物流很慢，客服态度不错"),
    ]
    comments = ["Slow delivery, but friendly support", "客服很耐心，物流还可以"]
    async with serve(create_app(h.deps.settings)) as client:
        agent = {"agent_id": "a-1", "name": "Ann", "skills": ["delivery"], "max_load": 3}
        assert (await client.post("/v1/agents", json=agent, headers=auth)).status_code == 201
        for n, (category, text) in enumerate(texts):
            body = {"ticket_id": f"t-{n}", "customer_id": f"c-{n}", "category": category, "text": text}
            response = await client.post("/v1/tickets", json=body, headers=auth)
            assert response.status_code == 201, response.text
        assert (await client.post("/v1/tickets", json=body, headers=auth)).status_code == 200  # idempotent
        for n, comment in enumerate(comments):
            await h.handle(
                survey_response_handler(h.deps), event("survey.response", f"c-{n}", {"csat": 4, "comment": comment})
            )

        ticket = (await client.get("/v1/tickets/t-0", headers=READER)).json()
        assert (ticket["agent_id"], ticket["queue"], ticket["sla"]["first_response"]["state"]) == (
            "a-1",
            "delivery",
            "running",
        )
        assert (await client.get("/v1/agents/a-1", headers=READER)).json()["current_load"] == 2

        themes = await client.get("/v1/analysis/themes", params={"k": 4}, headers=READER)
        assert themes.status_code == 200, themes.text
        assert themes.json()["documents"] == 5
        assert [t["term"] for t in themes.json()["themes"]] == ["物流", "客服", "delivery", "slow"]

        complaints = (await client.get("/v1/analysis/complaints", params={"period": "month"}, headers=READER)).json()
        (bucket,) = complaints["buckets"]
        assert bucket["categories"] == {"delivery": 2, "service": 1}

        assert_problem(
            await client.post("/v1/tickets", json={"customer_id": "c", "priority": "asap"}, headers=auth),
            422,
            "priority",
        )
        assert_problem(await client.patch("/v1/tickets/t-0", json={"status": "reopened"}, headers=auth), 409, "status")
        assert (await client.patch("/v1/tickets/t-404", json={"status": "resolved"}, headers=auth)).status_code == 404
        done = await client.patch("/v1/tickets/t-0", json={"status": "resolved"}, headers=auth)
        assert done.json()["status"] == "resolved" and done.json()["first_response_at"] is not None
        assert (await client.get("/v1/analysis/csat", headers={})).status_code == 401


async def test_ticket_events_over_kafka_and_breach_published(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    settings = h.deps.settings
    # Live mode: an urgent ticket opened 30 minutes ago has already missed its 20-minute first response.
    opened_at = datetime.now(UTC) - timedelta(minutes=30)
    async with serve(create_app(settings)) as client:
        publisher = Publisher(settings)
        await publisher.start()
        try:
            data = {"ticket_id": "t-k", "priority": "urgent", "category": "billing", "text": "charged twice"}
            await publisher.publish(
                publisher.topic(CUSTOMER_EVENTS), CloudEvent("k-1", "test", "ticket.opened", "c-k", opened_at, data)
            )

            async def ticket() -> dict[str, Any] | None:
                response = await client.get("/v1/tickets/t-k", headers=READER)
                return response.json() if response.status_code == 200 else None

            seen = await eventually(ticket)
            assert (seen["customer_id"], seen["priority"]) == ("c-k", "urgent")
            assert seen["sla"]["first_response"]["breached_at"] is not None
        finally:
            await publisher.stop()

        async def published_breach() -> bool:
            published = await read_events(settings.kafka_bootstrap, publisher.topic(FEEDBACK_EVENTS), 1, timeout_s=2)
            return any(event.type == "sla.breached" for event in published)

        assert await eventually(published_breach)
