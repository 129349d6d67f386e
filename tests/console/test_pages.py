"""Every console page through the real services, read with an HTML parser: forms, links and what each key sees."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from libs.common.topics import FEEDBACK_EVENTS
from services.console.domain.session import COOKIE
from services.console.domain.worklist import SUGGESTIONS
from tests.conftest import ADMIN_KEY
from tests.console.conftest import ADMIN, MANAGER_KEY, MARKETER_KEY, Platform, load_history, seed_ab_test
from tests.html import parse, path_of
from tests.topics import read_events
from tests.waiting import eventually

READER_KEY = "test-reader-key"


async def test_sign_in_sets_a_protected_cookie_and_pages_need_it(platform: Platform) -> None:
    async with platform.client("console") as anonymous:
        first = await anonymous.get("/customers/c-big")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=%2Fcustomers%2Fc-big"
        login = parse((await anonymous.get(first.headers["location"])).text)
        form = login.form("/login")
        assert form.method == "post" and form.values["next"] == ["/customers/c-big"]
        refused = await anonymous.post("/login", data=form.fields(api_key="not-a-key"))
        assert refused.status_code == 401 and parse(refused.text).has("This API key is not known")
        assert COOKIE not in refused.headers.get("set-cookie", "")
        open_redirect = await anonymous.post("/login", data=form.fields(api_key=READER_KEY, next="//evil.example/"))
        assert open_redirect.headers["location"] == "/"
        accepted = await anonymous.post("/login", data=form.fields(api_key=READER_KEY))
        assert accepted.status_code == 303 and accepted.headers["location"] == "/customers/c-big"
        cookie = accepted.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert READER_KEY not in cookie  # sealed, not readable
        tampered = platform.client("console")
        tampered.cookies.set(COOKIE, anonymous.cookies[COOKIE][:-3] + "xyz")
        async with tampered:
            assert (await tampered.get("/")).status_code == 303

        home = parse((await anonymous.get("/")).text)
        assert {"/customers", "/worklist", "/tickets", "/retention"} <= set(home.links)
        assert "/campaigns" not in home.links  # customers:read only
        logout = home.form("/logout")
        no_csrf = await anonymous.post("/logout", data={})
        assert no_csrf.status_code == 403
        out = await anonymous.post(path_of(logout.action), data=logout.fields())
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert (await anonymous.get("/")).status_code == 303


async def test_search_and_the_360_view(platform: Platform) -> None:
    await load_history(platform)
    async with platform.client("profile", ADMIN) as profile:
        assert (await profile.put("/v1/customers/c-big/tags/vip")).status_code == 200
    async with platform.sign_in(ADMIN_KEY) as console:
        search = parse((await console.get("/customers")).text)
        form = search.form("/customers")
        assert form.method == "get" and form.options["by"] == ["id", "email", "phone", "tag"]
        for by, query in (
            ("email", "LIN@example.com"),
            ("phone", "+86 138 0000 0000"),
            ("tag", "vip"),
            ("id", "c-big"),
        ):
            found = parse((await console.get("/customers", params={"by": by, "q": query})).text)
            assert "/customers/c-big" in found.links, (by, found.text)
            assert "/customers/c-small" not in found.links
        nobody = parse((await console.get("/customers", params={"by": "email", "q": "none@example.com"})).text)
        assert nobody.has("0 found")

        view = await console.get("/customers/c-big")
        assert view.status_code == 200
        page = parse(view.text)
        marks = {m.get("id") for m in page.marked}
        assert {"identities", "score", "orders", "actions", "tickets", "timeline"} <= marks
        assert page.has("Lin Wei") and page.has("lin@example.com") and page.has("vip")
        reasons = {m["data-reason"] for m in page.marked if "data-reason" in m}
        assert {"open_complaints", "detractor_nps"} <= reasons
        assert page.has("t-big") and page.has("Parcel lost")
        nps = next(m for m in page.marked if "data-nps" in m)
        assert nps["data-nps"] == "2"
        assert page.has("purchase") and page.has("ticket.opened")  # the timeline
        async with platform.client("scoring", ADMIN) as scoring:
            history = (await scoring.get("/v1/customers/c-big/score/history", params={"limit": 50})).json()["items"]
        shown = [m["data-history"] for m in page.marked if m.get("tag") == "tr" and "data-history" in m]
        assert len(shown) > 1  # the first score and the complaint's change at least
        # Newest first, as scoring has it; changes that arrived after the page was drawn come before them.
        assert [h["event_id"] for h in history][-len(shown) :] == shown
        assert "score-history" in marks and "line" in [m.get("data-chart") for m in page.marked]
        assert page.form("/customers/c-big/contacted").values["csrf"]
        missing = await console.get("/customers/c-nobody")
        assert missing.status_code == 404


async def test_worklist_orders_by_clv_at_risk_and_mark_contacted_publishes(platform: Platform) -> None:
    await load_history(platform)
    async with platform.sign_in(MANAGER_KEY) as console:
        answer = await console.get("/worklist", params={"level": "0.01"})
        assert answer.status_code == 200
        page = parse(answer.text)
        items = [m for m in page.marked if "data-clv-at-risk" in m]
        at_risk = [float(str(m["data-clv-at-risk"])) for m in items]
        assert at_risk == sorted(at_risk, reverse=True) and items[0]["data-customer"] == "c-big"
        # The strongest reason (listed first) decides the suggested action.
        first_reason = next(str(m["data-reason"]) for m in page.marked if "data-reason" in m)
        assert page.has(SUGGESTIONS[first_reason]), (first_reason, page.text)
        assert page.has("ticket.opened")  # among the last interactions
        form = page.form("/customers/c-big/contacted")
        assert form.options["outcome"][0] == "reached"
        back = form.values["back"][0]
        forged = await console.post(path_of(form.action), data=form.fields(csrf="nope"))
        assert forged.status_code == 403
        done = await console.post(path_of(form.action), data=form.fields(outcome="left_message", note="call back Fri"))
        assert done.status_code == 303
        assert urlsplit(done.headers["location"]).path == urlsplit(back).path
        assert parse_qs(urlsplit(done.headers["location"]).query)["done"] == ["c-big"]
        again = await console.post(path_of(form.action), data=form.fields(outcome="left_message"))
        assert again.status_code == 303  # the same form submitted twice records one contact

        after = parse((await console.get(done.headers["location"])).text)
        assert after.has("Recorded: c-big was contacted") and after.has("Last contacted")

    feedback = platform.apps["feedback"].state.settings
    published = await read_events(feedback.kafka_bootstrap, feedback.topic_prefix + FEEDBACK_EVENTS, 1)
    contacted = [e for e in published if e.type == "feedback.contacted"]
    assert [(e.subject, e.data["outcome"], e.data["contacted_by"]) for e in contacted] == [
        ("c-big", "left_message", "am-lin")
    ]
    async with platform.client("feedback", ADMIN) as api:
        [contact] = (await api.get("/v1/customers/c-big/contacts")).json()["items"]
        assert contact["note"] == "call back Fri"


async def test_scopes_decide_what_a_key_sees(platform: Platform) -> None:
    await load_history(platform)
    async with platform.sign_in(MARKETER_KEY) as marketer:
        home = parse((await marketer.get("/")).text)
        assert "/campaigns" in home.links and "/customers" not in home.links and "/worklist" not in home.links
        for path in ("/customers?by=id&q=c-big", "/customers/c-big", "/worklist", "/tickets", "/retention"):
            answer = await marketer.get(path)
            assert answer.status_code == 403, path
            assert (
                "Lin Wei" not in answer.text and "lin@example.com" not in answer.text and "c-small" not in answer.text
            )
            assert parse(answer.text).has("customers:read")
        contact = await marketer.post("/customers/c-big/contacted", data={"csrf": "x"})
        assert contact.status_code == 403
    async with platform.sign_in(READER_KEY) as reader:
        assert (await reader.get("/campaigns")).status_code == 403
        view = parse((await reader.get("/customers/c-big")).text)
        assert view.has("Lin Wei")
        assert not [f for f in view.forms if "contacted" in f.action]  # no feedback:write: no button


async def test_campaigns_report_tickets_and_retention(platform: Platform) -> None:
    await load_history(platform)
    definition = {
        "name": "Win back",
        "status": "active",
        "trigger": {"kind": "stage_entered", "stage": "at_risk"},
        "actions": [{"type": "message", "channel": "email", "subject": "We miss you", "body": "Hi {name}"}],
        "variants": [{"name": "a"}, {"name": "b"}],
        "holdout_percent": 20,
    }
    async with platform.client("campaign", ADMIN) as campaign:
        created = await campaign.post("/v1/campaigns", json=definition)
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
    await seed_ab_test(platform.apps["campaign"].state.settings.database_url, campaign_id)
    async with platform.sign_in(ADMIN_KEY) as console:
        listing = parse((await console.get("/campaigns")).text)
        assert f"/campaigns/{campaign_id}" in listing.links and listing.has("Win back")
        detail = await console.get(f"/campaigns/{campaign_id}")
        assert detail.status_code == 200
        page = parse(detail.text)
        assert page.has("A/B report") and page.has("Sends and skips")
        assert [m["data-chart"] for m in page.marked if "data-chart" in m] == ["uplift"]
        intervals = [str(m["data-ci"]) for m in page.marked if "data-ci" in m]
        assert len(intervals) == 2  # a and b against the holdout
        variants = {str(m["data-variant"]): m for m in page.marked if m.get("tag") == "tr" and "data-variant" in m}
        assert set(variants) == {"holdout", "a", "b"}
        uplifts = [m["data-uplift"] for m in page.marked if m.get("tag") == "td" and "data-uplift" in m]
        assert uplifts[0] == "None"  # the holdout is the baseline
        assert float(str(uplifts[1])) == pytest.approx(14 / 40 - 6 / 40, abs=1e-3)
        assert page.has("p-value") and page.has("95 % CI")
        assert (await console.get("/campaigns/cmp-nope")).status_code == 404

        async def ticket_page() -> object:
            tickets = parse((await console.get("/tickets")).text)
            rows = [m for m in tickets.marked if m.get("data-ticket") == "t-big"]
            return rows[0] if rows else None

        row = await eventually(ticket_page)
        assert row["data-sla"] in ("breached", "due_soon", "on_track")
        retention = await console.get("/retention")
        assert retention.status_code == 200
        shown = parse(retention.text)
        assert shown.has("insights service, which is not answering")
        assert [m["data-insights"] for m in shown.marked if "data-insights" in m] == ["unavailable"]


async def test_a_managed_key_signs_in_and_its_revocation_signs_out(platform: Platform) -> None:
    await load_history(platform)
    async with platform.client("profile", ADMIN) as profile:
        created = await profile.post("/v1/api-keys", json={"source": "am-desk", "scopes": ["customers:read"]})
        assert created.status_code == 201, created.text
        key = created.json()
        async with platform.sign_in(key["token"]) as manager:
            view = parse((await manager.get("/customers/c-big")).text)
            assert view.has("Lin Wei")
            assert (await manager.get("/campaigns")).status_code == 403  # the managed key's scopes hold
            assert (await profile.delete(f"/v1/api-keys/{key['key_id']}")).status_code == 204

            async def redirected_to_login() -> str | None:
                answer = await manager.get("/customers/c-big")
                return answer.headers["location"] if answer.status_code == 303 else None

            assert (await eventually(redirected_to_login, timeout_s=15)).startswith("/login")
