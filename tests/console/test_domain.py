"""The console's pure rules: worklist order and suggestions, SLA states, charts, the session cookie."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.console.domain.charts import heat_colour, line_chart, uplift_chart
from services.console.domain.session import SessionKeys
from services.console.domain.sla import by_state, sla_state
from services.console.domain.worklist import SUGGESTIONS, describe, last_interactions, rank, suggestion

scores = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.text(min_size=1, max_size=8),
            "churn_risk": st.floats(0, 1),
            "clv": st.one_of(st.none(), st.floats(0, 10_000)),
            "total_spend": st.floats(0, 10_000),
        }
    ),
    max_size=30,
    unique_by=lambda s: s["customer_id"],
)


@given(scores, st.floats(0, 1), st.integers(1, 40))
def test_worklist_holds_the_riskiest_value_first_and_nobody_below_the_level(
    found: list[dict[str, Any]], level: float, size: int
) -> None:
    items = rank(found, level, size)
    assert len(items) == min(size, sum(1 for s in found if s["churn_risk"] >= level))
    assert all(item.churn_risk >= level for item in items)
    at_risk = [item.clv_at_risk for item in items]
    assert at_risk == sorted(at_risk, reverse=True)
    # Whatever order scoring pages them in, the list is the same.
    assert [i.customer_id for i in rank(list(reversed(found)), level, size)] == [i.customer_id for i in items]


def test_value_falls_back_to_spend_and_suggestion_follows_the_strongest_reason() -> None:
    [item] = rank(
        [
            {
                "customer_id": "c",
                "churn_risk": 0.8,
                "clv": None,
                "total_spend": 500,
                "tier": "high",
                "reasons": [{"code": "no_login"}, {"code": "sla_breach"}],
            }
        ],
        0.5,
        10,
    )
    assert (item.value, item.value_basis, item.clv_at_risk) == (500.0, "spend", 400.0)
    assert suggestion(item).startswith(SUGGESTIONS["no_login"]) and "top tier" in suggestion(item)
    [plain] = rank([{"customer_id": "d", "churn_risk": 0.9, "clv": 10, "reasons": []}], 0.5, 10)
    assert suggestion(plain) == "Check in personally and ask how we can help"


def test_last_interactions_merge_tickets_surveys_and_contacts_newest_first() -> None:
    timeline = [
        {"time": "2026-11-03T00:00:00Z", "type": "purchase", "summary": {"order_id": "o"}},
        {
            "time": "2026-11-02T00:00:00Z",
            "type": "ticket.opened",
            "summary": {"ticket_id": "t", "categories": ["a", "b"]},
        },
        {"time": "2026-11-01T00:00:00Z", "type": "survey.response", "summary": {"nps": 3, "csat": None}},
    ]
    contacts = [
        {"contacted_at": "2026-11-04T00:00:00Z", "channel": "phone", "contacted_by": "am", "outcome": "reached"}
    ]
    found = last_interactions(timeline, contacts)
    assert [i.kind for i in found] == ["feedback.contacted", "ticket.opened", "survey.response"]
    assert found[1].summary == "ticket_id t, categories a, b" and found[2].summary == "nps 3"
    assert describe(None) == ""


def _clock(state: str, target: int, remaining: int, breached: str | None = None) -> dict[str, Any]:
    return {"state": state, "target_s": target, "remaining_s": remaining, "breached_at": breached}


@pytest.mark.parametrize(
    ("clocks", "expected"),
    [
        ({"resolution": _clock("running", 3600, 3000)}, "on_track"),
        ({"resolution": _clock("running", 3600, 600)}, "due_soon"),
        ({"resolution": _clock("running", 3600, -5)}, "breached"),
        (
            {
                "first_response": _clock("stopped", 60, 0, "2026-11-01T00:00:00Z"),
                "resolution": _clock("running", 3600, 3000),
            },
            "breached",
        ),
        ({"resolution": _clock("paused", 3600, 100)}, "paused"),
        ({"resolution": _clock("stopped", 3600, 100)}, "met"),
    ],
)
def test_sla_state(clocks: dict[str, Any], expected: str) -> None:
    assert sla_state({"sla": clocks}) == expected
    assert [t["sla"] for t in by_state([{"sla": clocks}])[expected]] == [clocks]


def test_charts_escape_labels_and_draw_each_interval() -> None:
    variants = [
        {"variant": "holdout", "conversion_rate": 0.1},
        {"variant": "<b>", "conversion_rate": 0.3, "uplift": 0.2, "ci_low": 0.05, "ci_high": 0.35, "p_value": 0.01},
    ]
    svg = uplift_chart(variants)
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert svg.count("data-ci=") == 1 and "p = 0.010" in svg and "#1b7f3b" in svg  # the interval excludes zero
    assert uplift_chart([]) == ""
    line = line_chart([("2026-01", 0.5), ("2026-02", None), ("2026-03", 0.7), ("2026-04", 0.6)], "Retention")
    assert line.count("<polyline") == 1 and line.count("<circle") == 3
    assert line_chart([("2026-01", None)], "x") == ""
    assert heat_colour(None) == "#f4f5f7" and heat_colour(0.0) == "#ffffff" and heat_colour(1.0) == "#2456d6"


def test_session_cookie_seals_the_key_and_expires() -> None:
    keys = SessionKeys("secret")
    cookie = keys.seal("the-api-key")
    assert "the-api-key" not in cookie
    assert keys.open(cookie, 60) == "the-api-key"
    assert keys.open(cookie[:-2] + "xx", 60) is None
    assert SessionKeys("other").open(cookie, 60) is None
    assert keys.open(None, 60) is None and keys.open("garbage", 60) is None
    assert keys.csrf_ok(cookie, keys.csrf_token(cookie)) and not keys.csrf_ok(cookie, "0" * 32)
    assert not keys.csrf_ok(keys.seal("the-api-key"), keys.csrf_token(cookie))  # another session's token
