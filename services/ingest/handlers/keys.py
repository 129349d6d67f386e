"""The key service: consumers fetch a customer's data key, still wrapped, to open sealed events."""

from __future__ import annotations

import base64
import hmac

from services.ingest.adapters import key_store
from services.ingest.handlers.deps import IngestDeps
from services.ingest.handlers.sealing import stored_keys_for


def credential_valid(ctx: IngestDeps, presented: str) -> bool:
    return ctx.sealer is not None and hmac.compare_digest(presented.encode(), ctx.sealer.credential.encode())


async def wrapped_key(ctx: IngestDeps, customer_id: str) -> dict[str, str] | None:
    """None for a customer without a key: never sealed for, or erased (the key destroyed)."""
    async with ctx.pool.acquire() as conn:
        found = await key_store.find(conn, customer_id)
    if found is None:
        return None
    key_id, wrapped = found
    return {"customer_id": customer_id, "key_id": key_id, "wrapped_key": base64.b64encode(wrapped).decode()}


async def wrapped_keys(ctx: IngestDeps, customer_ids: list[str], create: bool) -> list[dict[str, str]]:
    """The stored keys of those customers who have one; with `create`, a new key for each who has none."""
    assert ctx.sealer is not None  # credential_valid said so
    async with ctx.pool.acquire() as conn:
        if create:
            async with conn.transaction():
                found = await stored_keys_for(conn, ctx.sealer, set(customer_ids))
        else:
            found = await key_store.find_many(conn, customer_ids)
    return [
        {"customer_id": customer_id, "key_id": key_id, "wrapped_key": base64.b64encode(wrapped).decode()}
        for customer_id, (key_id, wrapped) in sorted(found.items())
    ]
