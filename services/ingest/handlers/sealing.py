"""Sealing personal data before it is stored or published (crypto-shredding, libs.common.personal).

Only events with personal fields (customer.upserted, tickets, surveys) pay: one key-store round trip per accepted
batch that has any, then AES-GCM per field. The key is read in the accepting transaction rather than cached, since
another worker process may have destroyed it (an erasure) a moment ago.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from libs.common import personal
from libs.common.settings import Settings
from services.ingest.adapters import key_store
from services.ingest.adapters.records import EventRecord
from services.ingest.domain.incoming import ValidEvent


@dataclass(frozen=True)
class Sealer:
    wrapper: personal.KeyWrapper
    index_key: bytes
    credential: str  # what consumers present to the key service

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer | None:
        master = personal.master_key_of(settings)
        if master is None:
            return None
        return cls(
            personal.MasterKeyWrapper(master),
            personal.derived_secret(master, personal.BLIND_INDEX_PURPOSE),
            personal.credential_for(master),
        )


async def stored_keys_for(
    conn: asyncpg.Connection, sealer: Sealer, customer_ids: set[str]
) -> dict[str, key_store.StoredKey]:
    """Each customer's stored (wrapped) key, created for those who have none yet.

    Most customers have one already: they are read first, and only the others get a new key made and inserted.
    """
    stored = await key_store.find_many(conn, customer_ids)
    missing = customer_ids - stored.keys()
    if not missing:
        return stored
    candidates = {
        customer_id: (personal.new_key_id(), sealer.wrapper.wrap(personal.new_data_key(), customer_id))
        for customer_id in missing
    }
    stored.update(await key_store.get_or_create(conn, candidates, personal.SCHEME_VERSION))
    for customer_id in missing - stored.keys():
        # Created by a concurrent transaction after this statement's snapshot: read it now it has committed.
        found = await key_store.find(conn, customer_id)
        if found is not None:
            stored[customer_id] = found
    return stored


async def keys_for(
    conn: asyncpg.Connection, sealer: Sealer, customer_ids: set[str]
) -> dict[str, personal.UnwrappedKey]:
    """Each customer's data key, created for those who have none yet."""
    stored = await stored_keys_for(conn, sealer, customer_ids)
    return {
        customer_id: personal.UnwrappedKey(key_id, sealer.wrapper.unwrap(wrapped, customer_id))
        for customer_id, (key_id, wrapped) in stored.items()
    }


async def seal_records(
    conn: asyncpg.Connection, sealer: Sealer, records: Sequence[EventRecord], events: Mapping[str, ValidEvent]
) -> list[EventRecord]:
    """The records with their personal fields sealed; records without any are returned as they are."""
    personal_data: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.type not in personal.PERSONAL_FIELDS:
            continue  # purchases, logins, ...: nothing to seal, and no need to look
        data = events[record.event_id].data.model_dump(mode="json", exclude_none=True)
        if personal.needs_key(record.type, data):
            personal_data[record.event_id] = data
    if not personal_data:
        return list(records)
    keys = await keys_for(conn, sealer, {r.customer_id for r in records if r.event_id in personal_data})
    sealed: list[EventRecord] = []
    for record in records:
        found = personal_data.get(record.event_id)
        if found is None:
            sealed.append(record)
            continue
        data = found
        key = keys[record.customer_id]
        value = personal.seal_data(record.type, record.customer_id, data, key.key_id, key.data_key, sealer.index_key)
        sealed.append(record._replace(value=orjson.dumps(value)))
    return sealed
