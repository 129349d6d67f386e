"""SQL of the profile service. Every bulk write is one statement over `unnest` arrays, sorted by key.

Sorted keys matter twice: row locks are taken in one global order, so two writers (consumer replicas, the API)
never deadlock, and a statement never carries the same key twice (CardinalityViolation in ON CONFLICT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.profile.adapters.tables import IDENTITY_COLUMNS, SCHEMA

S = SCHEMA


@dataclass(frozen=True, slots=True)
class StoredProfile:
    customer_id: str
    rev: int
    # The document as JSON text; None when the caller said it already holds this `rev` (see lock_profiles).
    state_json: str | None


@dataclass(frozen=True, slots=True)
class ProfileRow:
    customer_id: str
    rev: int
    state_json: str
    email: str | None
    phone: str | None
    erp_id: str | None
    shop_id: str | None
    # JSON array of the document's "tags" (the tags column is derived from it).
    tags_json: str


@dataclass(frozen=True, slots=True)
class TimelineRow:
    customer_id: str
    event_time: datetime
    event_id: str
    type: str
    summary: dict[str, Any]

    def moved_to(self, customer_id: str) -> TimelineRow:
        return TimelineRow(customer_id, self.event_time, self.event_id, self.type, self.summary)


async def survivors_of(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    """merged id -> survivor id for those of `ids` that were merged away."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result = await session.execute(
        text(f"SELECT merged_id, survivor_id FROM {S}.aliases WHERE merged_id = ANY(CAST(:ids AS text[]))"),
        {"ids": wanted},
    )
    return {row.merged_id: row.survivor_id for row in result}


# Erasure against the consumer's batches. A batch reads the erasure records after taking this lock shared, an erasure
# takes it exclusively before it deletes and records: so a batch that read no record for a customer commits before
# the erasure deletes (and is deleted with the rest), and a later batch reads the record. Row locks alone cannot do
# it for a customer whose first events are still in flight: there is no row yet to lock.
_ERASURE_GATE = {"lock_class": 0x45524153, "lock_id": 0}  # "ERAS"


async def enter_erasure_gate(session: AsyncSession) -> None:
    """Held shared until the transaction ends: erasures wait for this batch, and this batch for them."""
    await session.execute(text("SELECT pg_advisory_xact_lock_shared(:lock_class, :lock_id)"), _ERASURE_GATE)


async def close_erasure_gate(session: AsyncSession) -> None:
    """Held exclusively until the erasure's transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock_class, :lock_id)"), _ERASURE_GATE)


async def erased_at(session: AsyncSession, ids: Iterable[str]) -> dict[str, datetime]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    result = await session.execute(
        text(f"SELECT customer_id, erased_at FROM {S}.erasures WHERE customer_id = ANY(CAST(:ids AS text[]))"),
        {"ids": wanted},
    )
    return {row.customer_id: row.erased_at for row in result}


async def lock_profiles(
    session: AsyncSession,
    ids: Iterable[str],
    identities: Mapping[str, Iterable[str]] | None = None,
    held_revs: Mapping[str, int] | None = None,
) -> list[StoredProfile]:
    """Profiles with one of `ids` or holding one of the identity values, locked FOR UPDATE in key order.

    `held_revs` (customer id -> rev) names documents the caller already holds: a row still at that rev comes
    back without its document, which saves reading and transferring a few kB per cached profile. The comparison
    is made on the row as locked, so a concurrent change is never mistaken for the held one.
    """
    conditions = ["c.customer_id = ANY(CAST(:ids AS text[]))"]
    params: dict[str, Any] = {"ids": sorted(set(ids))}
    for column, values in (identities or {}).items():
        if column not in IDENTITY_COLUMNS:
            raise ValueError(f"not an identity column: {column}")
        wanted = sorted(set(values))
        if wanted:
            conditions.append(f"c.{column} = ANY(CAST(:{column} AS text[]))")
            params[column] = wanted
    held = sorted((held_revs or {}).items())
    params["held_ids"] = [customer_id for customer_id, _ in held]
    params["held_revs"] = [rev for _, rev in held]
    result = await session.execute(
        text(
            f"SELECT c.customer_id, c.rev, CASE WHEN h.rev = c.rev THEN NULL ELSE c.state::text END AS state "
            f"FROM {S}.customers c LEFT JOIN unnest(CAST(:held_ids AS text[]), CAST(:held_revs AS bigint[])) "
            f"AS h(customer_id, rev) ON h.customer_id = c.customer_id "
            f"WHERE {' OR '.join(conditions)} ORDER BY c.customer_id FOR UPDATE OF c"
        ),
        params,
    )
    return [StoredProfile(row.customer_id, row.rev, row.state) for row in result]


async def documents(session: AsyncSession, ids: Iterable[str]) -> dict[str, str]:
    """customer id -> document as JSON text (for rows the caller has already locked)."""
    result = await session.execute(
        text(
            f"SELECT customer_id, state::text AS state FROM {S}.customers WHERE customer_id = ANY(CAST(:ids AS text[]))"
        ),
        {"ids": sorted(set(ids))},
    )
    return {row.customer_id: row.state for row in result}


async def save_profiles(session: AsyncSession, rows: Sequence[ProfileRow]) -> None:
    if not rows:
        return
    ordered = sorted(rows, key=lambda row: row.customer_id)
    await session.execute(
        text(
            f"""
            INSERT INTO {S}.customers AS c (customer_id, rev, state, email, phone, erp_id, shop_id, tags)
            SELECT u.customer_id, u.rev, CAST(u.state AS json), u.email, u.phone, u.erp_id, u.shop_id,
                   ARRAY(SELECT jsonb_array_elements_text(CAST(u.tags AS jsonb)))
            FROM unnest(CAST(:ids AS text[]), CAST(:revs AS bigint[]), CAST(:states AS text[]),
                        CAST(:emails AS text[]), CAST(:phones AS text[]), CAST(:erp_ids AS text[]),
                        CAST(:shop_ids AS text[]), CAST(:tags AS text[]))
                 AS u(customer_id, rev, state, email, phone, erp_id, shop_id, tags)
            ON CONFLICT (customer_id) DO UPDATE SET
                rev = EXCLUDED.rev, state = EXCLUDED.state, email = EXCLUDED.email, phone = EXCLUDED.phone,
                erp_id = EXCLUDED.erp_id, shop_id = EXCLUDED.shop_id, tags = EXCLUDED.tags, updated_at = now()
            """
        ),
        {
            "ids": [row.customer_id for row in ordered],
            "revs": [row.rev for row in ordered],
            "states": [row.state_json for row in ordered],
            "emails": [row.email for row in ordered],
            "phones": [row.phone for row in ordered],
            "erp_ids": [row.erp_id for row in ordered],
            "shop_ids": [row.shop_id for row in ordered],
            # The tags column as a small JSON array: parsing the whole document a second time just for its tags
            # cost PostgreSQL as much as storing it.
            "tags": [row.tags_json for row in ordered],
        },
    )


async def insert_timeline(session: AsyncSession, rows: Sequence[TimelineRow]) -> None:
    if not rows:
        return
    await session.execute(
        text(
            f"""
            INSERT INTO {S}.timeline (customer_id, event_time, event_id, type, summary)
            SELECT u.customer_id, u.event_time, u.event_id, u.type, CAST(u.summary AS jsonb)
            FROM unnest(CAST(:ids AS text[]), CAST(:times AS timestamptz[]), CAST(:event_ids AS text[]),
                        CAST(:types AS text[]), CAST(:summaries AS text[]))
                 AS u(customer_id, event_time, event_id, type, summary)
            ON CONFLICT DO NOTHING
            """
        ),
        {
            "ids": [row.customer_id for row in rows],
            "times": [row.event_time for row in rows],
            "event_ids": [row.event_id for row in rows],
            "types": [row.type for row in rows],
            "summaries": [orjson.dumps(row.summary).decode() for row in rows],
        },
    )


async def record_merge(session: AsyncSession, survivor: str, merged: Sequence[str]) -> None:
    """Fold merged profiles' rows into the survivor; their ids become aliases (chains collapse to the survivor)."""
    if not merged:
        return
    params = {"survivor": survivor, "merged": sorted(merged)}
    await session.execute(text(f"DELETE FROM {S}.customers WHERE customer_id = ANY(CAST(:merged AS text[]))"), params)
    await session.execute(
        text(f"UPDATE {S}.timeline SET customer_id = :survivor WHERE customer_id = ANY(CAST(:merged AS text[]))"),
        params,
    )
    await session.execute(
        text(f"DELETE FROM {S}.segment_members WHERE customer_id = ANY(CAST(:merged AS text[]))"), params
    )
    await session.execute(
        text(f"UPDATE {S}.aliases SET survivor_id = :survivor WHERE survivor_id = ANY(CAST(:merged AS text[]))"),
        params,
    )
    await add_aliases(session, {merged_id: survivor for merged_id in merged})


async def add_aliases(session: AsyncSession, aliases: Mapping[str, str]) -> None:
    if not aliases:
        return
    ordered = sorted(aliases.items())
    await session.execute(
        text(
            f"""
            INSERT INTO {S}.aliases (merged_id, survivor_id)
            SELECT * FROM unnest(CAST(:merged AS text[]), CAST(:survivors AS text[]))
            ON CONFLICT (merged_id) DO UPDATE SET survivor_id = EXCLUDED.survivor_id, merged_at = now()
            """
        ),
        {"merged": [m for m, _ in ordered], "survivors": [s for _, s in ordered]},
    )


@dataclass(frozen=True, slots=True)
class SegmentRow:
    id: str
    name: str
    condition: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


async def all_segments(session: AsyncSession) -> list[SegmentRow]:
    result = await session.execute(
        text(f"SELECT id, name, condition, version, created_at, updated_at FROM {S}.segments ORDER BY id")
    )
    return [SegmentRow(*row) for row in result]


async def segment(session: AsyncSession, segment_id: str, *, lock: bool = False) -> SegmentRow | None:
    row = (
        await session.execute(
            text(
                f"SELECT id, name, condition, version, created_at, updated_at FROM {S}.segments WHERE id = :id"
                + (" FOR UPDATE" if lock else "")
            ),
            {"id": segment_id},
        )
    ).first()
    return None if row is None else SegmentRow(*row)


async def insert_segment(session: AsyncSession, segment_id: str, name: str, condition: dict[str, Any]) -> bool:
    """False when a segment of that id exists already."""
    inserted = (
        await session.execute(
            text(
                f"INSERT INTO {S}.segments (id, name, condition) VALUES (:id, :name, CAST(:condition AS jsonb)) "
                "ON CONFLICT (id) DO NOTHING RETURNING id"
            ),
            {"id": segment_id, "name": name, "condition": orjson.dumps(condition).decode()},
        )
    ).first()
    return inserted is not None


async def update_segment(
    session: AsyncSession, segment_id: str, name: str | None, condition: dict[str, Any] | None
) -> None:
    """Changes what is given (None keeps it) and bumps the version."""
    await session.execute(
        text(
            f"UPDATE {S}.segments SET name = COALESCE(:name, name), "
            "condition = COALESCE(CAST(:condition AS jsonb), condition), version = version + 1, "
            "updated_at = now() WHERE id = :id"
        ),
        {
            "id": segment_id,
            "name": name,
            "condition": orjson.dumps(condition).decode() if condition is not None else None,
        },
    )


async def delete_segment(session: AsyncSession, segment_id: str) -> None:
    await session.execute(text(f"DELETE FROM {S}.segments WHERE id = :id"), {"id": segment_id})


@dataclass(frozen=True)
class Member:
    customer_id: str
    since: datetime


async def segment_members(session: AsyncSession, segment_id: str, after: str, limit: int) -> list[Member]:
    """Members with a customer id above `after`, in customer id order."""
    rows = await session.execute(
        text(
            f"SELECT customer_id, since FROM {S}.segment_members WHERE segment_id = :id AND customer_id > :after "
            "ORDER BY customer_id LIMIT :limit"
        ),
        {"id": segment_id, "after": after, "limit": limit},
    )
    return [Member(row.customer_id, row.since) for row in rows]


async def memberships(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, set[str]]:
    """customer id -> ids of the segments it is in."""
    wanted = sorted(set(customer_ids))
    found: dict[str, set[str]] = {}
    if not wanted:
        return found
    result = await session.execute(
        text(f"SELECT customer_id, segment_id FROM {S}.segment_members WHERE customer_id = ANY(CAST(:ids AS text[]))"),
        {"ids": wanted},
    )
    for row in result:
        found.setdefault(row.customer_id, set()).add(row.segment_id)
    return found


async def change_memberships(
    session: AsyncSession, entered: Sequence[tuple[str, str]], left: Sequence[tuple[str, str]]
) -> None:
    """(segment id, customer id) pairs to add and to remove."""
    if entered:
        ordered = sorted(set(entered))
        await session.execute(
            text(
                f"""
                INSERT INTO {S}.segment_members (segment_id, customer_id)
                SELECT * FROM unnest(CAST(:segments AS text[]), CAST(:customers AS text[]))
                ON CONFLICT DO NOTHING
                """
            ),
            {"segments": [s for s, _ in ordered], "customers": [c for _, c in ordered]},
        )
    if left:
        ordered = sorted(set(left))
        await session.execute(
            text(
                f"""
                DELETE FROM {S}.segment_members m
                USING unnest(CAST(:segments AS text[]), CAST(:customers AS text[])) AS u(segment_id, customer_id)
                WHERE m.segment_id = u.segment_id AND m.customer_id = u.customer_id
                """
            ),
            {"segments": [s for s, _ in ordered], "customers": [c for _, c in ordered]},
        )


async def merged_into(session: AsyncSession, survivor: str) -> list[str]:
    """The ids whose profiles were merged into `survivor`."""
    rows = await session.execute(text(f"SELECT merged_id FROM {S}.aliases WHERE survivor_id = :id"), {"id": survivor})
    return list(rows.scalars())


_ERASE_STATEMENTS = tuple(
    text(statement)
    for statement in (
        f"DELETE FROM {S}.customers WHERE customer_id = ANY(CAST(:ids AS text[]))",
        f"DELETE FROM {S}.timeline WHERE customer_id = ANY(CAST(:ids AS text[]))",
        f"DELETE FROM {S}.segment_members WHERE customer_id = ANY(CAST(:ids AS text[]))",
        f"DELETE FROM {S}.aliases WHERE merged_id = ANY(CAST(:ids AS text[])) "
        "OR survivor_id = ANY(CAST(:ids AS text[]))",
        f"INSERT INTO {S}.erasures (customer_id, erased_at) SELECT unnest(CAST(:ids AS text[])), :at "
        "ON CONFLICT (customer_id) DO UPDATE SET erased_at = EXCLUDED.erased_at",
    )
)


async def erase(session: AsyncSession, ids: Sequence[str], at: datetime) -> None:
    """Deletes the profiles, timelines, memberships and aliases of `ids` and records each id as erased at `at`."""
    params = {"ids": list(ids), "at": at}
    for statement in _ERASE_STATEMENTS:
        await session.execute(statement, params)


@dataclass(frozen=True, slots=True)
class SegmentCandidate:
    customer_id: str
    state: str  # the stored document, as JSON text
    member: bool


_SEGMENT_CHUNK = text(
    f"""
    SELECT c.customer_id, c.state::text AS state, (m.customer_id IS NOT NULL) AS member
    FROM {S}.customers c
    LEFT JOIN {S}.segment_members m ON m.segment_id = :segment AND m.customer_id = c.customer_id
    WHERE c.customer_id > :after ORDER BY c.customer_id LIMIT :limit
    """
)
_ADD_MEMBERS = text(
    f"INSERT INTO {S}.segment_members (segment_id, customer_id) "
    "SELECT :segment, unnest(CAST(:ids AS text[])) ON CONFLICT DO NOTHING"
)
_REMOVE_MEMBERS = text(
    f"DELETE FROM {S}.segment_members WHERE segment_id = :segment AND customer_id = ANY(CAST(:ids AS text[]))"
)


async def segment_candidates(session: AsyncSession, segment_id: str, after: str, limit: int) -> list[SegmentCandidate]:
    """The next `limit` profiles after `after` in key order, each with whether it is in the segment now."""
    rows = await session.execute(_SEGMENT_CHUNK, {"segment": segment_id, "after": after, "limit": limit})
    return [SegmentCandidate(row.customer_id, row.state, row.member) for row in rows]


async def add_segment_members(session: AsyncSession, segment_id: str, customer_ids: Sequence[str]) -> None:
    if customer_ids:
        await session.execute(_ADD_MEMBERS, {"segment": segment_id, "ids": list(customer_ids)})


async def remove_segment_members(session: AsyncSession, segment_id: str, customer_ids: Sequence[str]) -> None:
    if customer_ids:
        await session.execute(_REMOVE_MEMBERS, {"segment": segment_id, "ids": list(customer_ids)})


async def export_of(session: AsyncSession, survivor: str) -> tuple[str | None, list[dict[str, Any]], list[str]]:
    """Everything profile keeps of a customer: the document, the timeline rows, the segments (the export)."""
    state = await session.scalar(
        text(f"SELECT state::text FROM {S}.customers WHERE customer_id = :id"), {"id": survivor}
    )
    rows = await session.execute(
        text(
            f"SELECT event_time, event_id, type, summary FROM {S}.timeline WHERE customer_id = :id "
            "ORDER BY event_time, event_id"
        ),
        {"id": survivor},
    )
    timeline = [{"time": row[0].isoformat(), "id": row[1], "type": row[2], "summary": row[3]} for row in rows.all()]
    segments = sorted((await memberships(session, [survivor])).get(survivor, set()))
    return state, timeline, segments


# --- the customers API --------------------------------------------------------------------------------------------


async def document(session: AsyncSession, customer_id: str) -> str | None:
    """The customer's document as JSON text, without a lock (a read for the API)."""
    query = text(f"SELECT state::text FROM {S}.customers WHERE customer_id = :id")
    value = await session.scalar(query, {"id": customer_id})
    return None if value is None else str(value)


async def profile_exists(session: AsyncSession, customer_id: str) -> bool:
    return bool(await session.scalar(text(f"SELECT 1 FROM {S}.customers WHERE customer_id = :id"), {"id": customer_id}))


async def timeline_page(
    session: AsyncSession, customer_id: str, before: tuple[datetime, str] | None, limit: int
) -> list[Any]:
    """Newest first, keyset on (event time, event id), from before `before` on."""
    params: dict[str, Any] = {"id": customer_id, "limit": limit}
    after = ""
    if before is not None:
        params["time"], params["event_id"] = before
        after = "AND (event_time, event_id) < (:time, :event_id)"
    result = await session.execute(
        text(
            f"SELECT event_time, event_id, type, summary FROM {S}.timeline WHERE customer_id = :id {after} "
            "ORDER BY event_time DESC, event_id DESC LIMIT :limit"
        ),
        params,
    )
    return list(result.all())


async def search(
    session: AsyncSession,
    *,
    email: str | None,
    phone: str | None,
    tag: str | None,
    segment: str | None,
    after: str | None,
    limit: int,
) -> list[tuple[str, str]]:
    """(customer id, document as JSON text) of the customers matching every filter given, by customer id."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if email is not None:
        where.append("c.email = :email")
        params["email"] = email
    if phone is not None:
        where.append("c.phone = :phone")
        params["phone"] = phone
    if tag is not None:
        where.append("c.tags @> ARRAY[CAST(:tag AS text)]")
        params["tag"] = tag
    if segment is not None:
        where.append(
            f"EXISTS (SELECT 1 FROM {S}.segment_members m WHERE m.segment_id = :segment "
            "AND m.customer_id = c.customer_id)"
        )
        params["segment"] = segment
    if after is not None:
        where.append("c.customer_id > :after")
        params["after"] = after
    result = await session.execute(
        text(
            f"SELECT c.customer_id, c.state::text AS state FROM {S}.customers c WHERE {' AND '.join(where) or 'true'} "
            "ORDER BY c.customer_id LIMIT :limit"
        ),
        params,
    )
    return [(row.customer_id, row.state) for row in result]
