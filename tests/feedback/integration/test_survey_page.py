"""The customer's side of a survey link: the page, the answer by form POST, the event, and every refusal."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from httpx import AsyncClient
from sqlalchemy import select

from libs.common.topics import FEEDBACK_EVENTS
from services.feedback.adapters.tables import survey_responses
from services.feedback.bootstrap import create_app
from services.feedback.handlers.surveys import issue_link
from tests.conftest import running
from tests.feedback.integration.harness import Harness
from tests.feedback.integration.test_app import forge
from tests.html import parse, path_of
from tests.topics import read_events

serve = asynccontextmanager(running)


async def _received(h: Harness, expect: int, timeout_s: float = 10) -> list[dict[str, object]]:
    """`feedback.received` data as published on the broker by the app's outbox relay."""
    settings = h.deps.settings
    published = await read_events(settings.kafka_bootstrap, settings.topic_prefix + FEEDBACK_EVENTS, expect, timeout_s)
    return [event.data for event in published if event.type == "feedback.received"]


async def _link(client: AsyncClient, auth: dict[str, str], survey_id: str, customer: str, **extra: object) -> str:
    response = await client.post(
        f"/v1/surveys/{survey_id}/links", json={"customer_id": customer, **extra}, headers=auth
    )
    assert response.status_code == 201, response.text
    url: str = response.json()["url"]
    return path_of(url)


async def _define(client: AsyncClient, auth: dict[str, str], survey_id: str, kind: str) -> None:
    body = {"survey_id": survey_id, "name": survey_id, "kind": kind, "question": "After your last order"}
    assert (await client.post("/v1/surveys", json=body, headers=auth)).status_code == 201


async def test_link_page_answer_event_and_single_use(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    async with serve(create_app(h.deps.settings)) as client:
        await _define(client, auth, "s-nps", "nps")
        url = await _link(client, auth, "s-nps", "c-1")
        page = await client.get(url)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        html = parse(page.text)
        assert html.has("How likely are you to recommend us") and html.has("After your last order")
        form = html.form("/surveys/s-nps")
        assert form.method == "post"
        assert form.options["score"] == [str(n) for n in range(11)]
        assert "comment" in form.values and form.values["token"][0] == parse_qs(urlsplit(url).query)["token"][0]

        # No score chosen: the form comes back with the comment kept and nothing recorded.
        missing = await client.post(path_of(form.action), data=form.fields(comment="fast delivery"))
        assert missing.status_code == 422
        again = parse(missing.text)
        assert again.has("Please choose a score") and again.form().values["comment"] == ["fast delivery"]
        assert await h.rows(select(survey_responses)) == []

        answered = await client.post(path_of(form.action), data=form.fields(score="9", comment="fast delivery"))
        assert answered.status_code == 201
        assert parse(answered.text).has("Thank you")
        [row] = await h.rows(select(survey_responses))
        assert (row["customer_id"], row["nps"], row["comment"], row["channel"]) == ("c-1", 9, "fast delivery", "link")
        received = await _received(h, 1)
        assert received == [{"score_type": "nps", "score": 9, "sentiment": "positive", "survey_id": "s-nps"}]

        # The same link again, as a page and as a second POST: "already answered", nothing more recorded.
        used = await client.get(url)
        assert used.status_code == 409 and parse(used.text).has("Already answered")
        second = await client.post(path_of(form.action), data=form.fields(score="0"))
        assert second.status_code == 409
        assert len(await h.rows(select(survey_responses))) == 1
        assert len(await _received(h, 1)) == 1


async def test_csat_in_chinese_by_link_locale_or_accept_language(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    async with serve(create_app(h.deps.settings)) as client:
        await _define(client, auth, "s-csat", "csat")
        zh_url = await _link(client, auth, "s-csat", "c-2", locale="zh")
        assert "lang=zh" in zh_url
        page = parse((await client.get(zh_url, headers={"Accept-Language": "en-US"})).text)
        assert page.lang == "zh-CN" and page.has("您对我们的服务满意吗")
        assert page.form().options["score"] == ["1", "2", "3", "4", "5"]
        assert any("lang=en" in link for link in page.links)  # a switch to English

        by_browser = await _link(client, auth, "s-csat", "c-3")
        browser_page = parse(
            (await client.get(by_browser, headers={"Accept-Language": "fr;q=1, zh-TW;q=0.8, en;q=0.5"})).text
        )
        assert browser_page.has("您对我们的服务满意吗")
        form = page.form()
        out_of_range = await client.post(path_of(form.action), data=form.fields(score="9"))
        assert out_of_range.status_code == 422 and parse(out_of_range.text).has("请选择一个分数")
        done = await client.post(path_of(form.action), data=form.fields(score="2", comment="客服回复太慢"))
        assert done.status_code == 201 and parse(done.text).has("谢谢您")
        [row] = await h.rows(select(survey_responses))
        assert (row["csat"], row["nps"], row["sentiment"]) == (2, None, "negative")


async def test_forged_expired_and_unknown_links_get_clear_pages(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    async with serve(create_app(h.deps.settings)) as client:
        await _define(client, auth, "s-nps", "nps")
        url = await _link(client, auth, "s-nps", "c-4")
        token = parse_qs(urlsplit(url).query)["token"][0]

        forged = await client.get("/surveys/s-nps", params={"token": forge(token, c="c-other")})
        assert forged.status_code == 403 and parse(forged.text).has("This link is not valid")
        garbage = await client.get("/surveys/s-nps", params={"token": "not-a-token"})
        assert garbage.status_code == 403
        missing = await client.get("/surveys/s-nps")
        assert missing.status_code == 403
        other_survey = await client.get("/surveys/s-elsewhere", params={"token": token})
        assert other_survey.status_code == 403
        posted_forgery = await client.post("/surveys/s-nps", data={"token": forge(token, c="c-x"), "score": "1"})
        assert posted_forgery.status_code == 403

        # Issued through the handler on the harness clock, months before the app's wall clock: long expired.
        async with h.sessions() as session, session.begin():
            stale, expires_at = await issue_link(h.deps, session, "s-nps", "c-4", timedelta(days=30))
        assert expires_at < datetime.now(UTC)
        expired = await client.get("/surveys/s-nps", params={"token": stale})
        assert expired.status_code == 410 and parse(expired.text).has("This link has expired")
        assert await h.rows(select(survey_responses)) == []
        assert await _received(h, 0, timeout_s=1) == []
