"""Use cases of the customers API: the 360-degree view, the timeline, search, and tags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.clock import as_of
from libs.common.outbox import Outbox
from services.profile.adapters import profiles
from services.profile.domain import ProfileState, customer_view, normalise_email, normalise_phone, set_tags
from services.profile.handlers.profiles import Cause, SegmentDefinitions, Working, save_and_announce
from services.profile.handlers.sealing import Vault


class NoSuchCustomer(Exception):
    pass


async def survivor(session: AsyncSession, customer_id: str) -> str:
    # Merges collapse alias chains, so one hop always reaches the profile that holds the data now.
    return (await profiles.survivors_of(session, [customer_id])).get(customer_id, customer_id)


async def customer(session: AsyncSession, vault: Vault, customer_id: str, clock_mode: str) -> dict[str, Any]:
    """Follows merges: a merged id answers with the survivor's profile and `merged_into` set."""
    held_by = await survivor(session, customer_id)
    raw = await profiles.document(session, held_by)
    if raw is None:
        raise NoSuchCustomer(customer_id)
    state = ProfileState.from_dict(await vault.open_text(held_by, raw))
    in_segments = (await profiles.memberships(session, [held_by])).get(held_by, set())
    now = as_of(clock_mode, state.last_seen)
    return customer_view(state, now, segments=in_segments, requested_id=customer_id)


@dataclass(frozen=True)
class TimelinePage:
    customer_id: str
    rows: list[Any]
    next_key: tuple[datetime, str] | None


async def timeline(
    session: AsyncSession, customer_id: str, before: tuple[datetime, str] | None, limit: int
) -> TimelinePage:
    held_by = await survivor(session, customer_id)
    # one row more than asked tells whether a next page exists without a count(*)
    rows = await profiles.timeline_page(session, held_by, before, limit + 1)
    if not rows and before is None and not await profiles.profile_exists(session, held_by):
        raise NoSuchCustomer(customer_id)
    page = rows[:limit]
    next_key = (page[-1].event_time, page[-1].event_id) if len(rows) > limit else None
    return TimelinePage(held_by, page, next_key)


def _summary(customer_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """A search hit: enough to pick the right customer without loading the full view."""
    orders = state.get("orders", {})
    return {
        "customer_id": customer_id,
        "name": state.get("attributes", {}).get("name"),
        "email": state.get("identities", {}).get("email"),
        "phone": state.get("identities", {}).get("phone"),
        "region": state.get("attributes", {}).get("region"),
        "tags": state.get("tags", []),
        "order_count": orders.get("count", 0),
        "total_spend": float(orders.get("total_spend", 0)),
        "last_seen": state.get("last_seen"),
    }


async def search(
    session: AsyncSession,
    vault: Vault,
    *,
    email: str | None,
    phone: str | None,
    tag: str | None,
    segment: str | None,
    after: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of search hits and the customer id the next page starts after (None: last page)."""
    rows = await profiles.search(
        session,
        # The columns hold blind indexes when personal data is sealed: the criterion is looked up as one.
        email=None if email is None else vault.column("email", normalise_email(email)),
        phone=None if phone is None else vault.column("phone", normalise_phone(phone)),
        tag=tag,
        segment=segment,
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    opened = await vault.open_texts(dict(page))
    return [_summary(customer_id, opened[customer_id]) for customer_id, _ in page], (
        page[-1][0] if len(rows) > limit else None
    )


async def edit_tags(
    session: AsyncSession,
    outbox: Outbox,
    vault: Vault,
    segments: SegmentDefinitions,
    customer_id: str,
    clock_mode: str,
    *,
    add: list[str],
    remove: list[str],
) -> dict[str, Any]:
    async with session.begin():
        await profiles.close_erasure_gate(session)  # first: a batch in flight commits before we delete
        held_by = await survivor(session, customer_id)
        stored = await profiles.lock_profiles(session, [held_by])
        if not stored:
            raise NoSuchCustomer(customer_id)
        document = stored[0].state_json
        assert document is not None  # no held revs were passed, so every row carries its document
        working = Working.parse(await vault.open_text(held_by, document))
        working.state, changed = set_tags(working.state, add=add, remove=remove)
        if changed:
            now = datetime.now(UTC)
            working.touch(Cause(f"tags:{uuid.uuid4()}", "tags.changed", now))
            await save_and_announce(
                session,
                outbox,
                [working],
                as_of=as_of(clock_mode, working.state.last_seen),
                segments=await segments.load(session),
                vault=vault,
            )
    return {"customer_id": held_by, "tags": working.state.tags}
