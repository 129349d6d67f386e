"""What one consumer batch shares: parsed campaigns, the customers' locks and facts, erasures, due reschedules.

A batch holds every customer it touches under that customer's lock (taken for all of them at once, in one
order), reads their facts once, applies its events to them in memory in arrival order and writes each changed
row once. Anything that reads the database for a decision (firing a campaign: guards, templates, counters) first
flushes what the batch changed, so it sees exactly what one-by-one handling would have seen.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from libs.common.consumer import HandlerContext
from services.campaign.adapters import bulk
from services.campaign.adapters.campaigns import StoredCampaign
from services.campaign.adapters.tables import aliases
from services.campaign.domain.definitions import EVENT_TRIGGER_KINDS, TIME_TRIGGER_KINDS, CampaignDefinition
from services.campaign.domain.triggers import matches, trigger_window
from services.campaign.handlers.deps import CampaignDeps
from services.campaign.handlers.timing import empty_facts, schedule_rows


class CampaignCache:
    """Active campaigns parsed once; each batch asks only for digests and re-parses what changed."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[str, StoredCampaign]] = {}

    async def active(self, session: Any, *, include_builtin: bool) -> list[StoredCampaign]:
        digests = await bulk.campaign_fingerprints(session, include_builtin=include_builtin)
        stale = [cid for cid, digest in digests.items() if self._parsed.get(cid, ("",))[0] != digest]
        if stale:
            for row in await bulk.load_campaign_rows(session, stale):
                stored = StoredCampaign(row.id, CampaignDefinition.model_validate(row.definition), row.builtin)
                self._parsed[row.id] = (row.digest, stored)
        for cid in [cid for cid in self._parsed if cid not in digests]:
            del self._parsed[cid]
        return [self._parsed[cid][1] for cid in sorted(digests) if cid in self._parsed]


@dataclass
class Batch:
    deps: CampaignDeps
    ctx: HandlerContext
    campaigns: list[StoredCampaign]
    # id → erasure instant, for the batch's ids that were erased (read once, kept up to date by the batch's erasures)
    erased: dict[str, datetime] = field(default_factory=dict)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    # customer → business time of the latest event that asks for their schedule to be recomputed
    reschedule_at: dict[str, datetime] = field(default_factory=dict)
    _locked: set[str] = field(default_factory=set)
    flush_hooks: list[Any] = field(default_factory=list)

    @property
    def session(self) -> Any:
        return self.ctx.session

    async def lock(self, customer_ids: Iterable[str]) -> None:
        wanted = set(customer_ids) - self._locked
        if wanted:
            await aliases.lock_many(self.session, wanted)
            self._locked |= wanted

    async def resolve(self, customer_ids: Collection[str]) -> dict[str, str]:
        """Locks the ids and the customers they stand for; returns id → customer, and reads their erasures."""
        await self.lock(customer_ids)
        resolved = await aliases.resolve_many(self.session, customer_ids)
        await self.lock(resolved.values())
        await self.read_erasures(set(resolved) | set(resolved.values()))
        return resolved

    async def read_erasures(self, customer_ids: Collection[str]) -> None:
        self.erased.update(await bulk.erasures_of(self.session, set(customer_ids) - set(self.erased)))

    def describes_erased(self, customer_ids: Iterable[str], at: datetime) -> bool:
        """An event of this time about these ids is the erased person's: it changes nothing."""
        return any(erased >= at for cid in customer_ids if (erased := self.erased.get(cid)) is not None)

    async def load(self, customer_ids: Iterable[str]) -> None:
        missing = {cid for cid in customer_ids if cid not in self.facts}
        if missing:
            found = await bulk.load_facts(self.session, missing)
            for cid in missing:
                self.facts[cid] = found.get(cid) or empty_facts(cid)

    def get(self, customer_id: str) -> dict[str, Any]:
        return self.facts[customer_id]

    def set(self, customer_id: str, values: Mapping[str, Any]) -> None:
        """What an upsert of these columns does: the row exists afterwards, other columns keep their values."""
        self.facts[customer_id].update(values)
        self.dirty.add(customer_id)

    def forget(self, customer_ids: Iterable[str]) -> None:
        """Rows changed behind the buffer's back (a join, an erasure): read them again when needed."""
        for cid in customer_ids:
            self.facts.pop(cid, None)
            self.dirty.discard(cid)

    def reschedule(self, customer_id: str, at: datetime) -> None:
        self.reschedule_at[customer_id] = at

    async def flush(self) -> None:
        """Writes what the batch changed so far, so a decision reads the state one-by-one handling would have."""
        for hook in self.flush_hooks:
            await hook()
        if self.dirty:
            await bulk.upsert_facts(self.session, [self.facts[cid] for cid in sorted(self.dirty)])
            self.dirty.clear()

    async def fire_event_triggers(
        self, customer_id: str, event_type: str, data: Mapping[str, Any], at: datetime
    ) -> None:
        from services.campaign.handlers.firing import fire

        for campaign in self.campaigns:
            trigger = campaign.definition.trigger
            if trigger.kind not in EVENT_TRIGGER_KINDS:
                continue
            match = matches(trigger, event_type, data)
            if match is not None:
                await self.flush()
                await fire(self.deps, self.ctx, campaign, customer_id, match, trigger_window(trigger, at), at)

    async def finish(self) -> None:
        await self.flush()
        pending, self.reschedule_at = self.reschedule_at, {}
        timed = [c for c in self.campaigns if c.definition.trigger.kind in TIME_TRIGGER_KINDS]
        if not timed or not pending:
            return
        await self.load(pending)
        keep, due = schedule_rows(self.deps, timed, {cid: self.facts[cid] for cid in pending}, pending)
        await bulk.reschedule(self.session, keep, due)
