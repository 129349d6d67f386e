"""SQL of the key store: customers' wrapped data keys (`ingest.customer_keys`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import asyncpg
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.adapters.tables import customer_keys

StoredKey = tuple[str, bytes]  # key id, wrapped key


async def get_or_create(
    conn: asyncpg.Connection, candidates: Mapping[str, StoredKey], scheme_version: int
) -> dict[str, StoredKey]:
    """Each customer's stored key; a customer without one gets its candidate. One round trip."""
    ids = sorted(candidates)
    rows = await conn.fetch(
        """
        WITH new AS (
            INSERT INTO ingest.customer_keys (customer_id, key_id, wrapped_key, scheme_version)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::integer[])
            ON CONFLICT (customer_id) DO NOTHING
            RETURNING customer_id, key_id, wrapped_key
        )
        SELECT customer_id, key_id, wrapped_key FROM new
        UNION ALL
        SELECT customer_id, key_id, wrapped_key FROM ingest.customer_keys WHERE customer_id = ANY($1::text[])
        """,
        ids,
        [candidates[i][0] for i in ids],
        [candidates[i][1] for i in ids],
        [scheme_version] * len(ids),
    )
    return {row[0]: (row[1], bytes(row[2])) for row in rows}


async def find_many(conn: asyncpg.Connection, customer_ids: Iterable[str]) -> dict[str, StoredKey]:
    """Stored keys only, taking no lock: most customers have one already, and creating waits on concurrent creators."""
    rows = await conn.fetch(
        "SELECT customer_id, key_id, wrapped_key FROM ingest.customer_keys WHERE customer_id = ANY($1::text[])",
        sorted(set(customer_ids)),
    )
    return {row[0]: (row[1], bytes(row[2])) for row in rows}


async def find(conn: asyncpg.Connection, customer_id: str) -> StoredKey | None:
    row = await conn.fetchrow(
        "SELECT key_id, wrapped_key FROM ingest.customer_keys WHERE customer_id = $1", customer_id
    )
    return None if row is None else (row[0], bytes(row[1]))


async def destroy(session: AsyncSession, customer_ids: Iterable[str]) -> None:
    """Crypto-shredding: without the key, every sealed copy of the customer's personal data is unreadable."""
    await session.execute(delete(customer_keys).where(customer_keys.c.customer_id.in_(sorted(set(customer_ids)))))
