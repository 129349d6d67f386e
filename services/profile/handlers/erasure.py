"""Erasing a customer (right to be forgotten): the profile goes, every id the person was known under is announced."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.contracts import CustomerErased, derived
from libs.common.outbox import Outbox
from services.profile.adapters import profiles
from services.profile.handlers.profiles import SOURCE


@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: str  # the profile that held the data: the survivor of any merge
    erased_ids: list[str]
    profile_found: bool


async def erase_customer(session: AsyncSession, outbox: Outbox, customer_id: str, now: datetime) -> Erasure:
    """Deletes the profile, its timeline, memberships and aliases, and announces `customer.erased` for every id the
    person was known under (other services may hold data under a merged id). Each id is remembered with the erasure
    time: events up to that time are dropped, so late deliveries and replays cannot restore the data, while a newer
    event starts a fresh profile (the customer came back). Runs inside the caller's transaction."""
    await profiles.close_erasure_gate(session)  # first: a batch in flight commits before we delete
    # Merges collapse alias chains, so one hop always reaches the profile that holds the data now.
    survivor = (await profiles.survivors_of(session, [customer_id])).get(customer_id, customer_id)
    stored = await profiles.lock_profiles(session, [survivor])
    ids = sorted({customer_id, survivor, *await profiles.merged_into(session, survivor)})
    await profiles.erase(session, ids, now)
    request_id = str(uuid.uuid4())
    events = [
        derived(
            CustomerErased(customer_id=erased_id),
            cause=f"erasure:{request_id}",
            source=SOURCE,
            subject=erased_id,
            time=now,
        )
        for erased_id in ids
    ]
    for topic, event in events:
        await outbox.add(session, topic, event)
    return Erasure(survivor, ids, bool(stored))
