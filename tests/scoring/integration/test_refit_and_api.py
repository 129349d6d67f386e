"""Refit on a few hundred CDNOW customers and the HTTP API (routes served without the broker)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import pytest
from httpx import ASGITransport
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from libs.common.envelope import CloudEvent
from services.scoring.adapters.tables import models, scores
from services.scoring.bootstrap import create_app
from services.scoring.handlers.refit import REFIT_LOCK_ID, RefitInProgress, refit
from tests.conftest import ADMIN_KEY, Isolation
from tests.problems import assert_problem
from tests.scoring.integration.helpers import Harness, harness, of_type, profile_updated, purchase

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports the deprecated pkg_resources
    import lifetimes

CDNOW_END = datetime(1998, 6, 30, tzinfo=UTC)
READER = {"Authorization": "Bearer test-reader-key"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def cdnow_events(n_customers: int) -> list[CloudEvent]:
    """The purchases of the first customers of the CDNOW master file, and a profile.updated for each as of mid-1998
    (the replay clock)."""
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_master.txt"
    tx = pd.read_csv(
        path, sep=r"\s+", skiprows=1, header=None, names=["id", "date", "n", "amount"], dtype={"date": str}
    )
    tx = tx[tx["id"] <= n_customers]
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d", utc=True)
    events = [
        purchase(f"cdnow-{line}", f"cdnow-{row.id:05d}", row.date.to_pydatetime(), float(row.amount))
        for line, row in enumerate(tx.itertuples())
        if row.amount > 0
    ]
    return events + [profile_updated(f"p-{cid}", f"cdnow-{cid:05d}", CDNOW_END, version=1) for cid in set(tx["id"])]


@pytest.fixture
async def replay(isolated: Isolation) -> AsyncIterator[Harness]:
    async for h in harness(isolated, clock_mode="replay"):
        yield h


async def test_refit_fits_the_base_stores_a_version_and_rescores(replay: Harness) -> None:
    events = cdnow_events(400)
    await replay.purchases(*[e for e in events if e.type == "purchase"])
    await replay.profile(*[e for e in events if e.type == "profile.updated"])
    before = await replay.score("cdnow-00001")
    assert before is not None and before["value_basis"] == "spend" and before["model_version"] is None
    await replay.clear_outbox()

    result = await refit(replay.service, replay.sessions, replay.outbox, trigger="test")

    assert result.version == 1 and result.small_base is False
    assert result.n_customers == 400 and result.rescored == 400
    assert result.as_of == CDNOW_END  # replay: the model is fitted as of the newest event, in 1998
    async with replay.sessions() as session:
        model = (await session.execute(select(models))).one()
        tiers: dict[str, int] = dict(
            (await session.execute(select(scores.c.tier, func.count()).group_by(scores.c.tier))).all()
        )
    assert model.bgnbd is not None and model.gamma_gamma is not None
    assert model.chosen_model in {"bg_nbd", "mbg_nbd", "pareto_nbd"}
    assert {c["name"] for c in model.candidates} == {"bg_nbd", "mbg_nbd", "pareto_nbd"}
    assert model.holdout["duration"] == 90 and model.holdout["chosen"]["rmse"] is not None
    assert 0 < model.n_unique_triples <= 400
    # CDNOW in days: a small purchase rate and dropout; sanity bounds, exact values are unit-tested
    assert 0.05 < model.bgnbd["r"] < 1.0 and model.bgnbd["alpha"] > 1.0
    assert tiers["high"] / 400 == pytest.approx(0.20, abs=0.05)
    assert tiers["medium"] / 400 == pytest.approx(0.30, abs=0.06)

    after = await replay.score("cdnow-00001")
    assert after is not None and after["value_basis"] == "clv" and after["model_version"] == 1
    assert after["clv"] is not None and after["expected_purchases_90d"] >= after["expected_purchases_30d"] >= 0
    assert after["p_alive"] is not None and after["as_of"] == "1998-06-30T00:00:00Z"
    emitted = await replay.emitted()
    assert len(of_type(emitted, "score.changed")) > 0  # CLV appeared for every buyer
    assert {c["kind"] for c in of_type(emitted, "threshold.crossed")} >= {"tier_up", "tier_down"}

    # the next event is scored against the new model without any reload step
    await replay.purchases(purchase("late", "cdnow-00001", CDNOW_END - timedelta(days=1), 300.0))
    rescored = await replay.score("cdnow-00001")
    assert rescored is not None and rescored["model_version"] == 1 and rescored["value_basis"] == "clv"


async def test_only_one_refit_at_a_time(replay: Harness) -> None:
    async with replay.sessions() as holder, holder.begin():
        await holder.execute(select(func.pg_advisory_xact_lock(REFIT_LOCK_ID)))
        with pytest.raises(RefitInProgress):
            await refit(replay.service, replay.sessions, replay.outbox, trigger="test")


@pytest.fixture
async def api(isolated: Isolation) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    """The scoring app's routes without its lifespan: no broker, no consumer-group join. Routes only
    use the runtime's sessions and outbox, so the harness stands in for it."""
    async for h in harness(isolated):
        app = create_app(h.settings)
        app.state.scoring = h.service
        app.state.runtime = SimpleNamespace(sessions=h.sessions, outbox=h.outbox)
        async with httpx.AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            yield h, client


async def test_score_list_paging_filters_and_problems(api: tuple[Harness, httpx.AsyncClient]) -> None:
    h, client = api
    now = datetime.now(UTC) - timedelta(hours=1)
    spends = {"c-1": 50.0, "c-2": 1500.0, "c-3": 250.0, "c-4": 2000.0, "c-5": 3000.0, "c-6": 10.0}
    await h.purchases(
        *[purchase(f"p-{c}", c, now, s) for c, s in spends.items()],
        purchase("p-c-7", "c-7", now - timedelta(days=60), 5.0),
    )
    await h.profile(profile_updated("u-c-7", "c-7", now, version=2, last_nps=2, open_tickets=1))

    one = await client.get("/v1/customers/c-2/score", headers=READER)
    assert one.status_code == 200
    body = one.json()
    assert body["tier"] == "high" and body["total_spend"] == 1500.0 and body["customer_id"] == "c-2"
    assert set(body["rfm"]) >= {"r", "f", "m", "score"} and "expected_purchases_30d" in body
    missing = await client.get("/v1/customers/nobody/score", headers=READER)
    assert_problem(missing, 404)

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params = {"tier": "high", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/scores", params=params, headers=READER)).json()
        pages.append([item["customer_id"] for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["c-2", "c-4"], ["c-5"]]

    risky = (await client.get("/v1/scores", params={"min_risk": "0.4"}, headers=READER)).json()
    assert [item["customer_id"] for item in risky["items"]] == ["c-7"]
    assert {r["code"] for r in risky["items"][0]["reasons"]} == {"detractor_nps", "open_complaints"}
    new = (await client.get("/v1/scores", params={"stage": "new", "tier": "low"}, headers=READER)).json()
    assert [item["customer_id"] for item in new["items"]] == ["c-1", "c-6"]

    for params, field in (
        ({"tier": "gold"}, "query.tier"),
        ({"min_risk": "2"}, "query.min_risk"),
        ({"stage": "x"}, "query.stage"),
        ({"cursor": "%%%"}, "cursor"),
    ):
        bad = await client.get("/v1/scores", params=params, headers=READER)
        assert_problem(bad, 422, field)
    assert (await client.get("/v1/scores")).status_code == 401


async def test_models_api_and_admin_refit(api: tuple[Harness, httpx.AsyncClient]) -> None:
    h, client = api
    now = datetime.now(UTC) - timedelta(hours=1)
    await h.purchases(purchase("p1", "c-1", now, 1200.0))
    assert (await client.post("/v1/models:refit", headers=READER)).status_code == 403
    refitted = await client.post("/v1/models:refit", headers=ADMIN)
    assert refitted.status_code == 200, refitted.text
    assert refitted.json()["version"] == 1 and refitted.json()["small_base"] is True
    listed = (await client.get("/v1/models", headers=READER)).json()["items"]
    assert [m["version"] for m in listed] == [1]
    assert listed[0]["bgnbd"] is None and listed[0]["n_buyers"] == 1 and listed[0]["diagnostics"]["trigger"] == "api"
    score = (await client.get("/v1/customers/c-1/score", headers=READER)).json()
    assert score["model_version"] == 1 and score["tier"] == "high"  # a 1-buyer base stays on the spend rule


async def test_a_refit_whose_model_misses_the_holdout_reports_drift(isolated: Isolation) -> None:
    """The holdout's predicted vs actual repeat purchases are kept with the model, the error is a gauge, and a miss
    beyond the configured share is an event."""
    async for h in harness(isolated, clock_mode="replay", scoring_drift_threshold=1e-6):
        events = cdnow_events(400)
        await h.purchases(*[e for e in events if e.type == "purchase"])
        await h.profile(*[e for e in events if e.type == "profile.updated"])
        await h.clear_outbox()
        result = await refit(h.service, h.sessions, h.outbox, trigger="test")
        async with h.sessions() as session:
            model = (await session.execute(select(models))).one()
        chosen = model.holdout["chosen"]
        assert chosen["actual_total"] > 0 and chosen["predicted_total"] > 0
        assert sum(b["customers"] for b in chosen["by_frequency"]) == model.holdout["customers"]
        drift = [(subject, data) for kind, subject, data in await h.emitted() if kind == "scoring.drift_detected"]
        assert drift == [(f"model:{result.version}", drift[0][1])]
        assert drift[0][1]["model"] == model.chosen_model
        assert drift[0][1]["total_relative_error"] == pytest.approx(chosen["total_relative_error"])
        gauge = REGISTRY.get_sample_value(
            "retain_scoring_holdout_error",
            {"service": h.settings.service, "model": model.chosen_model, "measure": "rmse"},
        )
        assert gauge == pytest.approx(chosen["rmse"])

    async for calm in harness(isolated, clock_mode="replay", scoring_drift_threshold=1e6):
        await calm.clear_outbox()
        await refit(calm.service, calm.sessions, calm.outbox, trigger="test")
        assert [kind for kind, _, _ in await calm.emitted() if kind == "scoring.drift_detected"] == []
