"""The published CDNOW results, reproduced from raw events: the 2,357-customer sample's purchases up to 1997-09-30
(the 39-week calibration period of Fader, Hardie & Lee 2005) posted through ingest's HTTP API, consumed by scoring
from the broker, refitted; `GET /v1/models` gives the published BG/NBD and Gamma-Gamma parameters, and each
customer's P(alive) and expected purchases are what the chosen model's formulas give with the listed parameters."""

from __future__ import annotations

import asyncio
import warnings
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from libs.common.kafka import ensure_topics
from services.ingest.bootstrap import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.scoring.adapters.tables import SCHEMA
from services.scoring.bootstrap import create_app as create_scoring
from services.scoring.domain.purchase_models import model_from_params
from services.scoring.settings import ScoringSettings
from tests.conftest import ADMIN_KEY, Isolation, running
from tests.waiting import eventually

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # lifetimes imports the deprecated pkg_resources
    import lifetimes

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
CALIBRATION_END = "1997-09-30"
# Fader, Hardie & Lee (2005) and lifetimes' summary of the same customers; alpha in weeks there
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414 * 7, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "v": 15.44}


def cdnow_sample() -> pd.DataFrame:
    path = Path(lifetimes.__file__).parent / "datasets" / "CDNOW_sample.txt"
    tx = pd.read_csv(
        path, sep=r"\s+", header=None, names=["id", "sample_id", "date", "cds", "amount"], dtype={"date": str}
    )
    tx = tx[tx["date"] <= CALIBRATION_END.replace("-", "")].reset_index(drop=True)
    tx["day"] = pd.to_datetime(tx["date"], format="%Y%m%d", utc=True)
    return tx


def as_events(tx: pd.DataFrame) -> list[dict[str, Any]]:
    """One purchase per row, as a shop would post it (several orders of a customer on one day are separate orders)."""
    return [
        {
            "id": f"cdnow-{line}",
            "type": "purchase",
            "customer_id": f"cdnow-{row.id:05d}",
            "time": row.day.strftime("%Y-%m-%dT00:00:00Z"),
            "data": {
                "order_id": f"order-{line}",
                "amount": f"{row.amount:.2f}",
                "currency": "USD",
            },
        }
        for line, row in enumerate(tx.itertuples())
    ]


def triples(tx: pd.DataFrame, customer: int) -> tuple[float, float, float]:
    """(frequency, recency, T) in days by the standard definitions, computed here from the raw rows."""
    days = sorted(set(tx.loc[tx["id"] == customer, "day"]))
    end = pd.Timestamp(CALIBRATION_END, tz="UTC")
    return float(len(days) - 1), float((days[-1] - days[0]).days), float((end - days[0]).days)


@pytest.mark.timeout(600)
async def test_cdnow_sample_through_ingest_gives_the_published_parameters(isolated: Isolation) -> None:
    tx = cdnow_sample()
    events = as_events(tx)
    n_customers = tx["id"].nunique()
    assert n_customers == 2357
    ingest_app = create_ingest(IngestSettings(**{**isolated.settings("ingest").model_dump(), "clock_mode": "replay"}))
    scoring_settings = {
        **isolated.settings(SCHEMA).model_dump(),
        "clock_mode": "replay",
        "scoring_refit_interval_s": 86_400,
    }
    scoring_app = create_scoring(ScoringSettings(**scoring_settings))
    await ensure_topics(isolated.settings("ingest"))
    async with (
        asynccontextmanager(running)(scoring_app) as scoring,
        asynccontextmanager(running)(ingest_app) as ingest,
    ):
        await asyncio.wait_for(ingest_app.state.runtime.broker_connected.wait(), 20)
        for start in range(0, len(events), 1000):
            answer = await ingest.post("/v1/events:batch", json={"events": events[start : start + 1000]}, headers=AUTH)
            assert answer.status_code == 202, answer.text
            statuses = {item["status"] for item in answer.json()["results"]}
            assert statuses == {"accepted"}, answer.text[:500]

        async def caught_up() -> bool:
            """Every customer scored with every order counted."""
            customers = orders = 0
            params: dict[str, Any] = {"limit": 500}
            while True:
                page = (await scoring.get("/v1/scores", params=params, headers=AUTH)).json()
                customers += len(page["items"])
                orders += sum(item["purchase_count"] for item in page["items"])
                if not page["next_cursor"]:
                    break
                params["cursor"] = page["next_cursor"]
            if customers == n_customers and orders == len(events):
                return True
            await asyncio.sleep(1.0)
            return False

        await eventually(caught_up, timeout_s=300)
        refitted = await scoring.post("/v1/models:refit", headers=AUTH)
        assert refitted.status_code == 200, refitted.text
        model = (await scoring.get("/v1/models", params={"limit": 1}, headers=AUTH)).json()["items"][0]

        assert model["time_unit"] == "day" and model["as_of"] == "1997-09-30T00:00:00Z"
        assert model["n_buyers"] == n_customers and model["small_base"] is False
        for name, value in PUBLISHED_BGNBD.items():
            assert model["bgnbd"][name] == pytest.approx(value, rel=0.01), name
        for name, value in PUBLISHED_GAMMA_GAMMA.items():
            assert model["gamma_gamma"][name] == pytest.approx(value, rel=0.01), name
        candidates = {c["name"]: c for c in model["candidates"]}
        assert set(candidates) == {"bg_nbd", "mbg_nbd", "pareto_nbd"}
        assert candidates["bg_nbd"]["params"] == pytest.approx(model["bgnbd"])
        for candidate in candidates.values():
            assert candidate["holdout"]["rmse"] > 0 and np.isfinite(candidate["log_likelihood"])
        chosen = model["chosen_model"]
        rmse = {name: c["holdout"]["rmse"] for name, c in candidates.items()}
        assert chosen == min(rmse, key=rmse.__getitem__) and candidates[chosen]["chosen"] is True

        # every customer's figures are the chosen model's formulas with the listed parameters
        formulas = model_from_params(chosen, candidates[chosen]["params"])
        ids = sorted(set(tx["id"]))
        for customer in (*ids[:3], *ids[1000:1003], *ids[-3:]):
            body = (await scoring.get(f"/v1/customers/cdnow-{customer:05d}/score", headers=AUTH)).json()
            f, r, t = triples(tx, customer)
            assert body["model_version"] == model["version"]
            assert body["p_alive"] == pytest.approx(float(formulas.probability_alive(f, r, t)), abs=1e-6)
            assert body["expected_purchases_30d"] == pytest.approx(
                float(formulas.expected_purchases(30.0, f, r, t)), abs=1e-6
            )
