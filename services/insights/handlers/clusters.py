"""Refitting the behavioural clusters and publishing each customer's cluster as a segment (`segments.changed`)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from libs.common.clock import wall_clock
from libs.common.contracts import SegmentsChanged, contract_of, derived
from libs.common.envelope import CloudEvent
from services.insights.adapters import store
from services.insights.domain.clusters import FEATURES, fit
from services.insights.handlers.deps import SOURCE, InsightsDeps

log = logging.getLogger(__name__)

_OUTBOX_CHUNK = 5000
SEGMENTS_TOPIC = contract_of(SegmentsChanged).topic


@dataclass
class Clusters(InsightsDeps):
    async def refit(self) -> dict[str, Any]:
        """Fits the clusters on every customer with purchases, as of the clock; emits `segments.changed` for each
        customer whose cluster changed (entered the new one, left the old one)."""
        moment = await self.now()
        async with self.sessions() as session:
            ids, features = await store.cluster_features(session, moment)
        if not ids:
            return {"k": 0, "customers": 0, "changed": 0, "clusters": []}
        s = self.settings
        result = await asyncio.to_thread(
            fit,
            np.array(features, dtype=np.float64),
            k=s.insights_cluster_k or None,
            k_range=(s.insights_cluster_k_min, max(s.insights_cluster_k_min, s.insights_cluster_k_max)),
            seed=s.insights_cluster_seed,
        )
        fit_id = f"{moment.isoformat()}:{len(ids)}"
        members = dict(zip(ids, result.labels, strict=True))
        described = [
            {
                "segment": c.segment,
                "customers": c.customers,
                "centre": c.centre,
                "z": c.z,
                "description": c.description,
                "fit_id": fit_id,
                "k": result.k,
                "silhouette": result.silhouette,
                "fitted_at": wall_clock(),
            }
            for c in result.clusters
        ]
        async with self.sessions() as session, session.begin():
            await store.lock_clusters(session)
            before = await store.cluster_members(session)
            await store.replace_clusters(session, described, members)
            moves = [
                (customer, before.get(customer), members.get(customer))
                for customer in sorted(set(before) | set(members))
                if before.get(customer) != members.get(customer)
            ]
            for low in range(0, len(moves), _OUTBOX_CHUNK):
                # Building the events of a whole base is seconds of Python: off the event loop, a chunk at a time.
                events = await asyncio.to_thread(_segment_events, moves[low : low + _OUTBOX_CHUNK], fit_id, moment)
                await self.outbox.add(session, SEGMENTS_TOPIC, *events)
            changed = len(moves)
        log.info("clusters refitted", extra={"k": result.k, "customers": len(ids), "changed": changed})
        return {"k": result.k, "silhouette": result.silhouette, "customers": len(ids), "changed": changed}

    async def described(self) -> dict[str, Any]:
        async with self.sessions() as session:
            rows = await store.stored_clusters(session)
        return {
            "features": list(FEATURES),
            "k": rows[0]["k"] if rows else 0,
            "silhouette": rows[0]["silhouette"] if rows else None,
            "fitted_at": rows[0]["fitted_at"] if rows else None,
            "clusters": [
                {key: row[key] for key in ("segment", "customers", "centre", "z", "description")} for row in rows
            ],
        }

    async def run(self) -> None:
        # The first refit waits one interval (or `POST /v1/clusters/refit`): a fit over the whole base is heavy, and
        # a service starting (a deploy, a replay) has not counted its customers yet.
        while True:
            await asyncio.sleep(self.settings.insights_cluster_interval_s)
            try:
                await self.refit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("refitting clusters failed; retrying at the next interval")


def _segment_events(moves: list[tuple[str, str | None, str | None]], fit_id: str, moment: datetime) -> list[CloudEvent]:
    """`segments.changed` for each customer whose cluster changed: entered the new one, left the old one."""
    return [
        derived(
            SegmentsChanged(segments_entered=[new] if new else [], segments_left=[old] if old else [], fit_id=fit_id),
            cause=f"clusters:{fit_id}:{customer}",
            source=SOURCE,
            subject=customer,
            time=moment,
        )[1]
        for customer, old, new in moves
    ]
