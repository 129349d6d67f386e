"""A marketing mail's unsubscribe link, end to end: the mail campaign sends -> ingest's page -> POST ->
`consent.changed` on customer-events -> campaign's consent facts (which guard every later message)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select

from libs.common.db import create_engine
from libs.common.topics import CUSTOMER_EVENTS
from libs.common.unsubscribe import issue_unsubscribe_token
from services.campaign.adapters.channels import Channels, Delivery, EmailChannel
from services.campaign.adapters.tables import customer_facts
from services.campaign.bootstrap import create_app as create_campaign
from services.campaign.settings import campaign_settings
from services.ingest.bootstrap import create_app as create_ingest
from services.ingest.settings import IngestSettings
from tests.campaign.integration.harness import SmtpServer
from tests.conftest import Isolation, running
from tests.html import parse, path_of
from tests.topics import read_events
from tests.waiting import eventually

SECRET = {"unsubscribe_token_secret": "shared-by-campaign-and-ingest", "unsubscribe_base_url": "http://test"}


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async for client in running(app):
        await asyncio.wait_for(app.state.runtime.broker_connected.wait(), 20)
        yield client


async def _mailed_link(isolated: Isolation, customer: str) -> tuple[str, dict[str, str]]:
    """Sends one marketing mail through campaign's channel adapters; returns its link and headers."""
    settings = campaign_settings(isolated.settings("campaign", **SECRET))
    with SmtpServer() as smtp:
        channels = Channels(settings)
        channels.messages["email"] = EmailChannel(settings.model_copy(update={"smtp_port": smtp.port}))
        await channels.send(
            Delivery("key-1", "message", "email", f"{customer}@example.com", "Hi", "Our picks", customer, "cmp-1")
        )
        [mail] = smtp.sink.messages
    headers = {name: str(mail[name]) for name in ("List-Unsubscribe", "List-Unsubscribe-Post")}
    return headers["List-Unsubscribe"].strip("<>"), headers


async def _consents(isolated: Isolation, customer: str) -> dict[str, bool] | None:
    engine = create_engine(isolated.settings("campaign"))
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(select(customer_facts.c.consents).where(customer_facts.c.customer_id == customer))
            ).first()
    finally:
        await engine.dispose()
    return None if row is None else dict(row.consents)


async def test_preference_page_choices_reach_campaign_as_consent_events(isolated: Isolation) -> None:
    link, headers = await _mailed_link(isolated, "c-7")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    ingest_settings = IngestSettings(**{**isolated.settings("ingest").model_dump(), **SECRET})
    async with AsyncExitStack() as stack:
        ingest = await stack.enter_async_context(serve(create_ingest(ingest_settings)))
        await stack.enter_async_context(serve(create_campaign(isolated.settings("campaign"))))

        page = await ingest.get(path_of(link), headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        html = parse(page.text)
        assert html.has("这条消息是通过电子邮件发给您的")
        assert {f.values["token"][0] for f in html.forms} == {parse_qs(urlsplit(link).query)["token"][0]}
        per_channel = next(f for f in html.forms if "channel.sms" in f.options)
        assert per_channel.options["channel.sms"] == ["keep", "stop", "allow"]
        assert per_channel.values["channel.sms"] == ["keep"]  # nothing changes unless chosen

        # Per channel: allow SMS, stop WeCom, leave the rest; a double submit repeats the same event ids.
        choice = per_channel.fields(**{"action": "save", "channel.sms": "allow", "channel.wecom": "stop"})
        done = await ingest.post(path_of(per_channel.action), data=choice)
        assert done.status_code == 200 and parse(done.text).has("企业微信")
        assert (await ingest.post(path_of(per_channel.action), data=choice)).status_code == 200

        # RFC 8058 one-click from the mail client: withdraws email, the channel the mail came on.
        one_click = await ingest.post(link, data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200

        settings = ingest_settings
        published = await read_events(settings.kafka_bootstrap, settings.topic_prefix + CUSTOMER_EVENTS, 3)
        changes = [(e.subject, e.data["channel"], e.data["granted"], e.source) for e in published]
        assert sorted(changes) == [
            ("c-7", "email", False, "retain/preference-page"),
            ("c-7", "sms", True, "retain/preference-page"),
            ("c-7", "wecom", False, "retain/preference-page"),
        ]

        async def campaign_knows() -> dict[str, bool] | None:
            consents = await _consents(isolated, "c-7")
            return consents if consents is not None and len(consents) == 3 else None

        assert await eventually(campaign_knows) == {"email": False, "sms": True, "wecom": False}


async def test_all_marketing_and_refused_links(isolated: Isolation) -> None:
    ingest_settings = IngestSettings(**{**isolated.settings("ingest").model_dump(), **SECRET})
    async with serve(create_ingest(ingest_settings)) as ingest:
        secret = SECRET["unsubscribe_token_secret"]
        token = issue_unsubscribe_token(secret, "c-8", "sms", "cmp-2", datetime.now(UTC) + timedelta(days=1))
        page = parse((await ingest.get("/unsubscribe", params={"token": token})).text)
        assert page.lang == "en" and page.has("You received this message by text message")
        every = next(f for f in page.forms if "all" in [value for _, value in f.buttons])
        done = await ingest.post(path_of(every.action), data=every.fields(action="all"))
        assert done.status_code == 200 and parse(done.text).has("We will no longer send you marketing by")

        published = await read_events(
            ingest_settings.kafka_bootstrap, ingest_settings.topic_prefix + CUSTOMER_EVENTS, 6
        )
        assert {(e.data["channel"], e.data["granted"]) for e in published} == {
            (channel, False) for channel in ("email", "sms", "wecom", "webhook", "push", "phone")
        }

        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        refused = await ingest.get("/unsubscribe", params={"token": forged})
        assert refused.status_code == 403 and parse(refused.text).has("This link is not valid")
        wrong_key = issue_unsubscribe_token(
            "another-secret", "c-8", "sms", "cmp-2", datetime.now(UTC) + timedelta(days=1)
        )
        assert (await ingest.post("/unsubscribe", data={"token": wrong_key, "action": "all"})).status_code == 403
        old = issue_unsubscribe_token(secret, "c-8", "sms", "cmp-2", datetime.now(UTC) - timedelta(seconds=1))
        expired = await ingest.get("/unsubscribe", params={"token": old, "lang": "zh"})
        assert expired.status_code == 410 and parse(expired.text).has("此链接已过期")
        one_click_forged = await ingest.post(f"/unsubscribe?token={forged}", data={"List-Unsubscribe": "One-Click"})
        assert one_click_forged.status_code == 403
        again = await read_events(ingest_settings.kafka_bootstrap, ingest_settings.topic_prefix + CUSTOMER_EVENTS, 6)
        assert len(again) == 6  # refused links published nothing

        # RFC 8058 lets the mail provider post the one-click body as multipart/form-data too.
        multipart = await ingest.post(f"/unsubscribe?token={token}", files={"List-Unsubscribe": (None, "One-Click")})
        assert multipart.status_code == 200 and multipart.headers["content-type"].startswith("text/plain")
        final = await read_events(ingest_settings.kafka_bootstrap, ingest_settings.topic_prefix + CUSTOMER_EVENTS, 7)
        assert len(final) == 7 and (final[-1].data["channel"], final[-1].data["granted"]) == ("sms", False)
