"""Against the services running as processes: every metric the alert rules and dashboards query is exposed,
with the labels they match on, and `retain status` reports health, lag, outboxes and dead letters."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from libs.common.topics import ALL_TOPICS
from retain_cli.embedded import free_port
from retain_cli.supervisor import SERVICES, Supervisor
from tests.conftest import ADMIN_KEY, REPO_ROOT, TEST_API_KEYS, Isolation, Stack
from tests.ops.monitoring import PROMETHEUS_OWN_SERIES, TARGET_LABELS, all_queries, selectors_of
from tests.waiting import eventually

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
# A caller with a tight rate limit, so the 429 path (and its counter) is exercised too.
LIMITED_KEY = "ops-limited-key"
LIMITED_SPEC = {"source": "limited", "scopes": ["events:write"], "rate_limit_per_s": 1}
# Every tier's high-priority ticket has to be answered within seconds: the ticket pushed below breaches at once.
FAST_SLA = {tier: {"high": {"first_response_minutes": 0.05}} for tier in ("vip", "high", "medium", "low")}
# A detractor's survey answer gets a coupon and an email: the coupon is then redeemed by a purchase.
DETRACTOR_CAMPAIGN = {
    "name": "Sorry",
    "status": "active",
    "trigger": {"kind": "low_nps"},
    "actions": [
        {"type": "coupon", "kind": "amount", "value": "5", "currency": "USD"},
        {"type": "message", "channel": "email", "subject": "Sorry", "body": "Hi {name}"},
    ],
}
# The sample names each metric type exposes, after its family name.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
    "untyped": ("",),
}


@dataclass
class Running:
    supervisor: Supervisor
    isolation: Isolation
    log_dir: Path


@pytest.fixture(scope="module")
async def platform(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One platform for the module: starting the services is the expensive part."""
    name = f"ops{os.getpid()}"
    stack.postgres.create_database(name)
    isolation = Isolation(stack, database=name, prefix=f"{name}-")
    log_dir = tmp_path_factory.mktemp("platform")
    env = {
        **isolation.env(),
        "RETAIN_API_KEYS": json.dumps({**TEST_API_KEYS, LIMITED_KEY: LIMITED_SPEC}),
        "RETAIN_SLA_TABLE": json.dumps(FAST_SLA),
        # Every scrape recounts the state gauges: the test reads what the tables hold at that moment.
        "RETAIN_METRICS_REFRESH_MIN_INTERVAL_S": "0",
    }
    supervisor = Supervisor(env=env, ports={s: free_port() for s in SERVICES}, log_dir=log_dir)
    supervisor.start_all()
    try:
        ready = await supervisor.wait_ready(90)
        assert all(ready.values()), f"not ready: {ready}; logs in {log_dir}"
        await push_events(supervisor)
        yield Running(supervisor, isolation, log_dir)
    finally:
        await supervisor.shutdown(drain_timeout_s=20)
        supervisor.stop(SERVICES)


def event(event_id: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return {"id": event_id, "type": type_, "customer_id": "c-ops", "time": at.isoformat(), "data": data}


async def push_events(supervisor: Supervisor) -> None:
    """A purchase, a login and a ticket through ingest, a rejected one, a caller over its rate limit, and a wait
    until the consumers had them; then a detractor's survey answer, whose coupon a second purchase redeems, and
    the ticket's SLA breach."""
    purchase = {
        "order_id": "o-ops",
        "amount": 50.0,
        "currency": "USD",
        "items": [{"sku": "s-1", "category": "books", "quantity": 1, "price": 50.0}],
    }
    ticket = {"ticket_id": "t-ops", "priority": "high", "category": "delivery", "text": "late"}
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        url = f"{supervisor.url('ingest')}/v1/events"
        created = await client.post(f"{supervisor.url('campaign')}/v1/campaigns", json=DETRACTOR_CAMPAIGN)
        assert created.status_code == 201, created.text
        for body in (
            event("ops-1", "purchase", purchase),
            event("ops-2", "login", {"channel": "web"}),
            event("ops-3", "ticket.opened", ticket),
        ):
            response = await client.post(url, json=body)
            assert response.status_code == 202, response.text
        rejected = await client.post(url, json=event("ops-4", "purchase", {**purchase, "currency": "XYZ"}))
        assert rejected.status_code == 422
        limited = {"Authorization": f"Bearer {LIMITED_KEY}"}
        answers = [
            (await client.post(url, json=event(f"ops-l{n}", "login", {"channel": "web"}), headers=limited)).status_code
            for n in range(20)
        ]
        assert 429 in answers and 202 in answers

        async def ticket_seen() -> bool:
            return (await client.get(f"{supervisor.url('feedback')}/v1/tickets/t-ops")).status_code == 200

        async def scored() -> bool:
            return (await client.get(f"{supervisor.url('scoring')}/v1/customers/c-ops/score")).status_code == 200

        await eventually(ticket_seen)
        await eventually(scored)
        await redeem_a_detractors_coupon(client, supervisor, purchase)

        async def breached() -> bool:
            ticket = (await client.get(f"{supervisor.url('feedback')}/v1/tickets/t-ops")).json()
            return any(clock.get("breached_at") for clock in ticket.get("sla", {}).values())

        await eventually(breached)


async def redeem_a_detractors_coupon(client: httpx.AsyncClient, supervisor: Supervisor, order: dict[str, Any]) -> None:
    response = await client.post(
        f"{supervisor.url('ingest')}/v1/events", json=event("ops-5", "survey.response", {"nps": 2})
    )
    assert response.status_code == 202, response.text

    async def coupon_code() -> str | None:
        answer = await client.get(f"{supervisor.url('campaign')}/v1/customers/c-ops/actions")
        kinds = {item["kind"]: item for item in answer.json().get("items", [])}
        return kinds["coupon"]["details"]["code"] if {"coupon", "message"} <= kinds.keys() else None

    code = await eventually(coupon_code)
    redeeming = {**order, "order_id": "o-ops-2", "coupon_code": code}
    # After the coupon was issued (its issue time is when campaign decided), so it can be redeemed.
    paid = {**event("ops-6", "purchase", redeeming), "time": datetime.now(UTC).isoformat()}
    response = await client.post(f"{supervisor.url('ingest')}/v1/events", json=paid)
    assert response.status_code == 202, response.text

    async def redeemed() -> bool:
        coupon = await client.get(f"{supervisor.url('campaign')}/v1/coupons/{code}")
        return bool(coupon.json().get("redeemed"))

    await eventually(redeemed)


async def scrape(platform: Running) -> dict[str, dict[str, set[str]]]:
    """For every service: each exposed sample name and the label names seen on it (empty when no sample yet)."""
    exposed: dict[str, dict[str, set[str]]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name in SERVICES:
            response = await client.get(f"{platform.supervisor.url(name)}/metrics")
            assert response.status_code == 200
            samples: dict[str, set[str]] = {}
            for family in text_string_to_metric_families(response.text):
                for suffix in SUFFIXES[family.type]:
                    samples.setdefault(family.name + suffix, set())
                for sample in family.samples:
                    samples.setdefault(sample.name, set()).update(sample.labels)
            exposed[name] = samples
    return exposed


async def test_every_metric_the_rules_and_dashboards_query_is_exposed_with_its_labels(platform: Running) -> None:
    exposed = await scrape(platform)
    union: dict[str, set[str]] = {}
    for samples in exposed.values():
        for sample, labels in samples.items():
            union.setdefault(sample, set()).update(labels)
    problems = []
    for query in all_queries():
        for selector in selectors_of(query.expr):
            if selector.metric in PROMETHEUS_OWN_SERIES:
                continue
            if selector.metric not in union:
                problems.append(f"{query.where}: {selector.metric} is exposed by no service")
                continue
            seen = union[selector.metric]
            unknown = selector.labels - seen - TARGET_LABELS
            if seen and unknown:
                problems.append(f"{query.where}: {selector.metric} has no label {sorted(unknown)}")
    assert problems == []


async def test_the_core_series_have_samples_after_events_flowed(platform: Running) -> None:
    exposed = await scrape(platform)
    for name in SERVICES:
        samples = exposed[name]
        assert samples["retain_http_request_duration_seconds_count"], name
        assert samples["retain_dependency_up"] == {"service", "dependency"}, name
        assert samples["retain_outbox_backlog"], name
    for consumer in ("profile", "scoring", "campaign", "feedback"):
        assert exposed[consumer]["retain_consumer_lag"] == {"service", "topic", "partition"}, consumer
        assert exposed[consumer]["retain_events_consumed_total"], consumer
    assert exposed["ingest"]["retain_ingest_events_total"] == {"type", "source", "outcome"}
    # Single-process services report their process; ingest's several workers do not (multiprocess mode).
    assert exposed["profile"]["process_resident_memory_bytes"] == set()


async def values(platform: Running, service: str, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each sample of one gauge as a service exposes it: sorted label pairs -> value."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{platform.supervisor.url(service)}/metrics")
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == metric
    }


def total(samples: dict[tuple[tuple[str, str], ...], float], **match: str) -> float:
    return sum(value for labels, value in samples.items() if match.items() <= dict(labels).items())


async def test_the_retention_gauges_count_what_the_services_hold(platform: Running) -> None:
    """Customers by grade, coupons issued and redeemed, messages by outcome and SLA breaches by tier, as the tables
    hold them after the events above: one scored customer, one coupon redeemed, one message, one breach."""
    customers = await values(platform, "scoring", "retain_customers")
    assert {dict(labels)["tier"] for labels in customers} == {"low", "medium", "high"}
    assert total(customers) == 1
    risk = await values(platform, "scoring", "retain_customers_by_churn_risk")
    assert len(risk) == 10 and total(risk) == 1
    async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
        score = (await client.get(f"{platform.supervisor.url('scoring')}/v1/customers/c-ops/score")).json()
    assert total(customers, tier=score["tier"], stage=score["stage"]) == 1
    assert total(risk, risk=f"{min(int(score['churn_risk'] * 10), 9) / 10:.1f}") == 1

    issued = await values(platform, "campaign", "retain_coupons_issued")
    redeemed = await values(platform, "campaign", "retain_coupons_redeemed")
    assert list(issued.values()) == [1] and list(redeemed.values()) == [1]
    actions = await values(platform, "campaign", "retain_campaign_actions")
    assert total(actions, kind="message", channel="email") == 1
    assert total(actions, kind="coupon", status="issued") == 1

    breaches = await values(platform, "feedback", "retain_sla_breaches")
    assert total(breaches, clock="first_response") == 1


async def test_retain_status_reports_every_service_group_and_dead_letter_topic(platform: Running) -> None:
    urls = {f"RETAIN_{name.upper()}_URL": platform.supervisor.url(name) for name in SERVICES}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "retain_cli",
        "status",
        "--json",
        "--bootstrap",
        platform.isolation.stack.broker.bootstrap,
        "--prefix",
        platform.isolation.prefix,
        cwd=REPO_ROOT,
        env={**os.environ, **urls},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    status = json.loads(out)
    assert [(s["name"], s["ready"], s["checks"]["database"]) for s in status["services"]] == [
        (name, True, "ok") for name in SERVICES
    ]
    assert all(s["outbox_backlog"] is not None for s in status["services"])
    groups = {group["group"]: group for group in status["groups"]}
    assert "profile.customer-events" in groups and "campaign.score-changes" in groups
    assert all(group["lag"] is not None and group["lag"] >= 0 for group in groups.values())
    assert set(status["dead_letters"]) == {f"{platform.isolation.prefix}{t}.dlq" for t in ALL_TOPICS}
    assert status["broker_error"] is None
