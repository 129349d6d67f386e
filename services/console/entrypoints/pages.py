"""The console's pages: sign in with an API key, then only what that key's scopes allow.

Routes stay thin: who is signed in (the session cookie), which handler gathers the page, which template shows it.
Every form is a plain POST answered by a redirect (no JavaScript needed); every POST carries the session's CSRF
token besides the SameSite=Strict cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from libs.common.auth import Principal, authenticate
from libs.common.pages import Pages, first, form_fields
from libs.common.problems import Problem
from services.console.domain.charts import heat_colour, line_chart, text_colour, uplift_chart
from services.console.domain.session import COOKIE, SessionKeys
from services.console.domain.sla import ORDER as SLA_ORDER
from services.console.domain.worklist import describe
from services.console.handlers import views
from services.console.settings import ConsoleSettings

router = APIRouter(include_in_schema=False)
PAGES = Pages([Path(__file__).parent.parent / "templates"])
PAGES.environment.globals.update(heat_colour=heat_colour, text_colour=text_colour)
CONTACT_OUTCOMES = ("reached", "no_answer", "left_message", "declined", "resolved")
CONTACT_CHANNELS = ("phone", "email", "sms", "wecom", "visit", "other")


@dataclass(frozen=True)
class User:
    key: str
    principal: Principal
    cookie: str
    csrf: str

    def can(self, scope: str) -> bool:
        return self.principal.has(scope)  # type: ignore[arg-type]


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def _keys(request: Request) -> SessionKeys:
    keys: SessionKeys = request.app.state.session_keys
    return keys


def _upstreams(request: Request) -> views.Services:
    upstreams: views.Services = request.app.state.upstreams
    return upstreams


def _max_age(request: Request) -> int:
    return int(_settings(request).console_session_hours * 3600)


async def _principal(request: Request, key: str) -> Principal | None:
    """A bootstrap key from the configuration, else whatever profile says the key is (the console owns no tables,
    the key store included): a revoked or expired managed key signs out at the next page."""
    try:
        return authenticate(_settings(request).api_keys, f"Bearer {key}")
    except Problem:
        pass
    whoami = await _upstreams(request).get("profile", "/v1/auth/whoami", key)
    if not whoami.ok:
        return None
    body = whoami.json()
    return Principal(key_id=body["key_id"], source=body["source"], scopes=frozenset(body["scopes"]))


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


async def signed_in(request: Request) -> User:
    cookie = request.cookies.get(COOKIE)
    key = _keys(request).open(cookie, _max_age(request))
    principal = await _principal(request, key) if key else None
    if cookie is None or key is None or principal is None:  # a key removed from the configuration signs out too
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # A form posted after the session ended cannot be replayed by a redirect: start from the home page.
        raise SignInRequired(target if request.method == "GET" else "/")
    return User(key, principal, cookie, _keys(request).csrf_token(cookie))


SignedIn = Annotated[User, Depends(signed_in)]


def _page(request: Request, user: User | None, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return PAGES.response(name, status, user=user, path=request.url.path, **context)


def _forbidden(request: Request, user: User, scope: str) -> HTMLResponse:
    return _page(request, user, "forbidden.html", 403, scope=scope)


async def _checked_form(request: Request, user: User) -> dict[str, list[str]]:
    fields = await form_fields(request)
    if not _keys(request).csrf_ok(user.cookie, first(fields, "csrf")):
        raise Problem(403, "Forbidden", "the form's CSRF token does not match this session")
    return fields


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute URL or a scheme-relative one (an open redirect).
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


# --- sign in ------------------------------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> HTMLResponse:
    return _page(request, None, "login.html", next=_safe_next(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    key = (first(fields, "api_key") or "").strip()
    target = _safe_next(first(fields, "next"))
    if not key or await _principal(request, key) is None:
        return _page(request, None, "login.html", 401, next=target, error="This API key is not known.")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        _keys(request).seal(key),
        max_age=_max_age(request),
        httponly=True,
        samesite="strict",
        secure=_settings(request).console_secure_cookies,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, user: SignedIn) -> Response:
    await _checked_form(request, user)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, user: SignedIn) -> HTMLResponse:
    return _page(request, user, "home.html")


# --- customers ----------------------------------------------------------------------------------------------------


@router.get("/customers", response_class=HTMLResponse)
async def customer_search(
    request: Request,
    user: SignedIn,
    q: Annotated[str, Query(max_length=254)] = "",
    by: Annotated[str, Query(max_length=16)] = "email",
) -> HTMLResponse:
    if not user.can("customers:read"):
        return _forbidden(request, user, "customers:read")
    by = by if by in views.SEARCH_FIELDS else "email"
    q = q.strip()
    results = await views.search(_upstreams(request), user.key, by, q) if q else None
    return _page(request, user, "search.html", q=q, by=by, fields=views.SEARCH_FIELDS, results=results)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_view(request: Request, user: SignedIn, customer_id: str) -> HTMLResponse:
    if not user.can("customers:read"):
        return _forbidden(request, user, "customers:read")
    view = await views.customer_360(_upstreams(request), user.key, customer_id)
    status = 404 if view.profile.state == "none" and view.score.state == "none" else 200
    changes = list(reversed(view.history.data.get("items", []))) if view.history.state == "ok" else []
    risk_chart = line_chart([(str(c["at"])[:10], c.get("churn_risk")) for c in changes], "Churn risk over time")
    return _page(
        request,
        user,
        "customer.html",
        status,
        view=view,
        outcomes=CONTACT_OUTCOMES,
        channels=CONTACT_CHANNELS,
        risk_chart=risk_chart if len(changes) > 1 else "",
    )


# --- at-risk worklist ---------------------------------------------------------------------------------------------


@router.get("/worklist", response_class=HTMLResponse)
async def worklist_page(
    request: Request,
    user: SignedIn,
    level: Annotated[float | None, Query(ge=0, le=1)] = None,
    done: Annotated[str | None, Query(max_length=128)] = None,
) -> HTMLResponse:
    if not user.can("customers:read"):
        return _forbidden(request, user, "customers:read")
    settings = _settings(request)
    chosen = settings.console_risk_level if level is None else level
    work = await views.worklist(
        _upstreams(request), user.key, chosen, settings.console_worklist_size, settings.console_worklist_candidates
    )
    return _page(
        request,
        user,
        "worklist.html",
        work=work,
        done=done,
        outcomes=CONTACT_OUTCOMES,
        channels=CONTACT_CHANNELS,
        submission=secrets.token_urlsafe(12),
    )


@router.post("/customers/{customer_id}/contacted")
async def mark_contacted(request: Request, user: SignedIn, customer_id: str) -> Response:
    fields = await _checked_form(request, user)
    if not user.can("feedback:write"):
        return _forbidden(request, user, "feedback:write")
    outcome = first(fields, "outcome") or "reached"
    channel = first(fields, "channel") or "phone"
    reply = await views.mark_contacted(
        _upstreams(request),
        user.key,
        customer_id,
        by=first(fields, "by") or user.principal.source,
        outcome=outcome if outcome in CONTACT_OUTCOMES else "reached",
        channel=channel if channel in CONTACT_CHANNELS else "phone",
        note=(first(fields, "note") or "").strip()[:2000],
        submission=f"console-{first(fields, 'submission') or secrets.token_urlsafe(12)}-{customer_id}"[:128],
    )
    if not reply.ok:
        return _page(request, user, "upstream_error.html", 502 if reply.status is None else reply.status, reply=reply)
    back = _safe_next(first(fields, "back"))
    separator = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{separator}{urlencode({'done': customer_id})}", status_code=303)


# --- campaigns ----------------------------------------------------------------------------------------------------


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_page(request: Request, user: SignedIn) -> HTMLResponse:
    if not user.can("campaigns:write"):
        return _forbidden(request, user, "campaigns:write")
    listing, rows = await views.campaigns(_upstreams(request), user.key)
    return _page(request, user, "campaigns.html", listing=listing, rows=rows)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(request: Request, user: SignedIn, campaign_id: str) -> HTMLResponse:
    if not user.can("campaigns:write"):
        return _forbidden(request, user, "campaigns:write")
    definition, report, outcomes = await views.campaign_detail(_upstreams(request), user.key, campaign_id)
    chart = uplift_chart(report.data.get("variants", []))
    status = 404 if definition.state == "none" else 200
    return _page(
        request, user, "campaign.html", status, definition=definition, report=report, outcomes=outcomes, chart=chart
    )


# --- tickets and retention ----------------------------------------------------------------------------------------


@router.get("/tickets", response_class=HTMLResponse)
async def tickets_page(request: Request, user: SignedIn) -> HTMLResponse:
    if not user.can("customers:read"):
        return _forbidden(request, user, "customers:read")
    section, groups = await views.tickets(_upstreams(request), user.key)
    return _page(request, user, "tickets.html", section=section, groups=groups, order=SLA_ORDER)


@router.get("/retention", response_class=HTMLResponse)
async def retention_page(
    request: Request, user: SignedIn, period: Annotated[str, Query(pattern="^(week|month|quarter)$")] = "month"
) -> HTMLResponse:
    if not user.can("customers:read"):
        return _forbidden(request, user, "customers:read")
    kpis, cohorts = await views.retention(_upstreams(request), user.key, period)
    rows = kpis.data.get("rows", [])
    charts = [
        line_chart([(row["period"], row.get("retention_rate")) for row in rows], "Retention rate"),
        line_chart([(row["period"], row.get("churn_rate")) for row in rows], "Churn rate"),
        line_chart([(row["period"], row.get("revenue")) for row in rows], "Revenue", percent=False),
    ]
    width = max((len(c.get("periods", [])) for c in cohorts.data.get("cohorts", [])), default=0)
    return _page(
        request,
        user,
        "retention.html",
        period=period,
        kpis=kpis,
        rows=rows,
        charts=[chart for chart in charts if chart],
        cohorts=cohorts,
        cohort_width=width,
    )


def customer_link(customer_id: str) -> str:
    return f"/customers/{quote(customer_id, safe='')}"


PAGES.environment.globals.update(customer_link=customer_link, describe=describe)
