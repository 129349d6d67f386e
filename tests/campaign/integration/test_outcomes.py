"""A campaign's sends and skips by reason, as the console's campaign pages read them."""

from __future__ import annotations

from contextlib import asynccontextmanager

from services.campaign.bootstrap import create_app
from tests.campaign.integration.harness import Harness, event
from tests.conftest import running

serve = asynccontextmanager(running)
SMS = {"type": "message", "channel": "sms", "body": "Hello {name}"}
COUPON = {"type": "coupon", "kind": "percent", "value": 10, "valid_days": 14}


async def test_outcomes_count_actions_by_status_and_reason(harness: Harness, auth: dict[str, str]) -> None:
    h = harness
    await h.add_campaign(
        "m", {"name": "m", "trigger": {"kind": "stage_entered", "stage": "at_risk"}, "actions": [SMS, COUPON]}
    )
    for customer, consents in (("c-yes", {"sms": True}), ("c-no", {}), ("c-no2", {"sms": False})):
        await h.handle(
            h.handlers.on_profile_change, event("profile.updated", customer, {"metrics": {"consents": consents}})
        )
        data = {"kind": "stage_changed", "old": "active", "new": "at_risk"}
        await h.handle(h.handlers.on_score_change, event("threshold.crossed", customer, data))
    async with serve(create_app(h.settings)) as client:
        answer = await client.get("/v1/campaigns/m/outcomes", headers=auth)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        # c-yes consented but has no phone number: skipped too, for another reason.
        assert body["not_sent_by_reason"] == {"no_consent": 2, "no_address": 1}
        assert body["by_status"] == {"skipped": 3, "issued": 3}
        assert sum(row["count"] for row in body["rows"]) == 6
        assert (await client.get("/v1/campaigns/nope/outcomes", headers=auth)).status_code == 404
        reader = {"Authorization": "Bearer test-reader-key"}
        assert (await client.get("/v1/campaigns/m/outcomes", headers=reader)).status_code == 403
