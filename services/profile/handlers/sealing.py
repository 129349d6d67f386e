"""Profiles at rest hold no personal data in clear (crypto-shredding, libs.common.personal).

The stored document keeps email, phone, name and birthday sealed with the customer's own data key, and the `email`
and `phone` columns that identity resolution and search look up hold blind indexes (keyed HMAC of the normalised
value) instead of the values. `profile.updated` announces the contact facts sealed the same way. Erasing the customer
destroys the key, so every copy (rows, backups, the outbox, the topic) is unreadable from then on.

Keys come from ingest's key service, one request per batch for the customers the key cache does not hold; a profile
whose id has no key yet (a merge survivor first known by another id) gets one created. Opened documents never leave
the process: the state cache holds them opened, so a cache hit costs no cryptography at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from libs.common import personal
from libs.common.envelope import CloudEvent
from libs.common.personal import PersonalData, UnwrappedKey
from services.profile.domain import ProfileState

# (section, field) of the document sealed at rest.
SEALED_PATHS: tuple[tuple[str, str], ...] = (
    ("identities", "email"),
    ("identities", "phone"),
    ("attributes", "name"),
    ("attributes", "birthday"),
)
INDEXED_KINDS = frozenset({"email", "phone"})


def _field(section: str, name: str) -> str:
    return f"{section}.{name}"


def has_personal(state: ProfileState) -> bool:
    return any(getattr(getattr(state, section), name) is not None for section, name in SEALED_PATHS)


def document_has_personal(document: Mapping[str, Any]) -> bool:
    return any((document.get(section) or {}).get(name) is not None for section, name in SEALED_PATHS)


def open_document(document: dict[str, Any], customer_id: str, key: UnwrappedKey | None) -> None:
    """Opens the sealed fields in place; a value whose key is gone (the customer erased) becomes None."""
    for section, name in SEALED_PATHS:
        part = document.get(section)
        if not isinstance(part, dict):
            continue
        token = part.get(name)
        if not isinstance(token, str) or not token.startswith(personal.PREFIX):
            continue
        value: str | None = None
        if key is not None:
            try:
                value = personal.open_value(key.data_key, customer_id, _field(section, name), token)
            except (InvalidTag, ValueError):  # sealed with another key: unreadable, like a destroyed one
                value = None
        part[name] = value


def sealed_copy(state: ProfileState, key: UnwrappedKey) -> ProfileState:
    """A shallow copy whose personal fields are tokens, for serialising only (its types no longer validate)."""
    updates: dict[str, Any] = {}
    for section in ("identities", "attributes"):
        part = getattr(state, section)
        sealed: dict[str, str] = {}
        for owner, name in SEALED_PATHS:
            if owner != section:
                continue
            value = getattr(part, name)
            if value is None:
                continue
            text = value.isoformat() if isinstance(value, date) else str(value)
            sealed[name] = personal.seal_value(key.data_key, state.customer_id, _field(section, name), text)
        if sealed:
            updates[section] = part.model_copy(update=sealed)
    return state.model_copy(update=updates) if updates else state


class Vault:
    """Sealing and opening for one process; without a master key (or with sealing off) everything stays clear."""

    def __init__(self, personal_data: PersonalData | None) -> None:
        self.personal = personal_data

    @property
    def sealing(self) -> bool:
        return self.personal is not None and self.personal.sealing

    def column(self, kind: str, value: str | None) -> str | None:
        """What the `email` / `phone` column holds (and is searched by) for a value."""
        if value is None or kind not in INDEXED_KINDS or self.personal is None:
            return value
        return self.personal.index(kind, value)

    def lookups(self, wanted: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
        return {kind: {self.column(kind, value) or value for value in values} for kind, values in wanted.items()}

    async def keys_to_seal(self, states: Iterable[ProfileState]) -> dict[str, UnwrappedKey]:
        """The keys the profiles with personal data will be sealed with (created where missing)."""
        if self.personal is None or not self.sealing:
            return {}
        return await self.keys_for([state.customer_id for state in states if has_personal(state)])

    async def keys_for(self, customer_ids: list[str]) -> dict[str, UnwrappedKey]:
        if self.personal is None or not self.sealing or not customer_ids:
            return {}
        return await self.personal.keys_for(customer_ids)

    async def open_texts(self, documents: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """customer id -> document as stored (JSON text) -> parsed and opened; one key request for all."""
        parsed = {customer_id: orjson.loads(text) for customer_id, text in documents.items()}
        sealed = [customer_id for customer_id, text in documents.items() if personal.PREFIX in text]
        if not sealed:
            return parsed
        keys: Mapping[str, UnwrappedKey | None] = {}
        if self.personal is not None:
            keys = await self.personal.keys.keys(sealed)
        for customer_id in sealed:
            open_document(parsed[customer_id], customer_id, keys.get(customer_id))
        return parsed

    async def open_text(self, customer_id: str, document: str) -> dict[str, Any]:
        return (await self.open_texts({customer_id: document}))[customer_id]

    def seal_announcement(self, event: CloudEvent, key: UnwrappedKey | None) -> None:
        """`profile.updated` with its contact facts sealed (in place); unchanged without a key."""
        if key is None or self.personal is None or self.personal.index_key is None:
            return
        sealed = personal.seal_data(
            event.type, event.subject, event.data, key.key_id, key.data_key, self.personal.index_key
        )
        event.data.clear()
        event.data.update(sealed)
