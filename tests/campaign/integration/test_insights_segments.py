"""A cluster insights publishes (`segments.changed`) is a segment campaign audiences can name."""

from __future__ import annotations

from libs.common.consumer import HandlerContext
from tests.campaign.integration.harness import Harness, event

COUPON = {"type": "coupon", "kind": "amount", "value": 10, "currency": "USD"}
STAGE = {"kind": "stage_entered", "stage": "at_risk"}


async def segments_changed(h: Harness, cid: str, entered: list[str], left: list[str]) -> None:
    data = {"segments_entered": entered, "segments_left": left, "fit_id": "fit-1"}
    async with h.sessions() as session, session.begin():
        await h.handlers.handle_segment_changes(
            HandlerContext(session, h.deps.outbox), [event("segments.changed", cid, data)]
        )


async def at_risk(h: Harness, cid: str) -> None:
    data = {"kind": "stage_changed", "old": "active", "new": "at_risk"}
    await h.handle(h.handlers.on_score_change, event("threshold.crossed", cid, data))


async def test_an_audience_on_a_cluster_reaches_only_its_members(harness: Harness) -> None:
    h = harness
    await h.add_campaign(
        "win-back", {"name": "w", "trigger": STAGE, "actions": [COUPON], "audience": {"segments": ["cluster-1"]}}
    )
    await segments_changed(h, "c-1", ["cluster-1"], [])
    await segments_changed(h, "c-2", ["cluster-2"], [])
    await segments_changed(h, "c-3", ["cluster-1"], [])
    await segments_changed(h, "c-3", ["cluster-2"], ["cluster-1"])  # moved at the next refit
    for cid in ("c-1", "c-2", "c-3"):
        await at_risk(h, cid)
    outcome = {cid: [(row.status, row.reason) for row in await h.actions(cid)] for cid in ("c-1", "c-2", "c-3")}
    assert outcome == {
        "c-1": [("issued", None)],
        "c-2": [("skipped", "audience_mismatch")],
        "c-3": [("skipped", "audience_mismatch")],
    }
