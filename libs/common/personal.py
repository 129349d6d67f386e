"""Personal data sealed with per-customer keys (crypto-shredding) and keyed blind indexes.

Ingest owns the key store (`ingest.customer_keys`): one random 256-bit data key per customer, kept wrapped by the
master key (`KeyWrapper`; `MasterKeyWrapper` reads it from configuration, a KMS plugs in behind the same interface).
Before an upstream event is stored in the event log or published, ingest replaces each personal field of its `data`
by `pd1:<base64 of nonce | AES-GCM ciphertext>` (the field name and customer id are the associated data, so a value
cannot be moved to another field or customer) and adds a `sealed` object: the scheme version, the key id, the sealed
field names and the blind indexes of email and phone. Consumers open an event before their handler sees it
(`PersonalData.open_events`, called by the consumer loop), fetching the customer's data key from ingest's key
service over HTTP (`GET /v1/keys/{customer_id}`, answered with the key still wrapped, so only a holder of the master
key can use it; cached for `key_cache_ttl_s`). Erasing a customer deletes their key: every sealed copy (event log,
topics, backups) is unreadable from then on, and an event that cannot be opened reaches its handler without its
personal fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.common.envelope import CloudEvent
from libs.common.settings import Settings

SCHEME_VERSION = 1
PREFIX = "pd1:"
SEALED = "sealed"
NONCE_BYTES = 12
KEY_BYTES = 32
# Which fields of which upstream event types are personal data.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "customer.upserted": ("name", "email", "phone", "birthday"),
    "ticket.opened": ("text",),
    "ticket.updated": ("text",),
    "ticket.closed": ("resolution",),
    "survey.response": ("comment",),
}
INDEXED_FIELDS: tuple[str, ...] = ("email", "phone")


class KeyServiceUnavailable(OSError):
    """The key service did not answer: an infrastructure failure, so the consumer loop rewinds and waits."""


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; a KMS client implements the same two calls."""

    def wrap(self, data_key: bytes, customer_id: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, customer_id: str) -> bytes: ...


class MasterKeyWrapper:
    """AES-GCM key wrapping under a 256-bit master key held in configuration."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError("the master key must be 32 bytes (base64 in RETAIN_MASTER_KEY or its key file)")
        self._aead = AESGCM(master_key)

    def wrap(self, data_key: bytes, customer_id: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, b"wrap:" + customer_id.encode())

    def unwrap(self, wrapped: bytes, customer_id: str) -> bytes:
        return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"wrap:" + customer_id.encode())


def master_key_of(settings: Settings) -> bytes | None:
    """The master key from RETAIN_MASTER_KEY (base64) or RETAIN_MASTER_KEY_FILE; None when neither is set."""
    if settings.master_key is not None:
        return base64.b64decode(settings.master_key.get_secret_value())
    if settings.master_key_file:
        return base64.b64decode(Path(settings.master_key_file).read_text().strip())
    return None


def derived_secret(master_key: bytes, purpose: str) -> bytes:
    """A secret of its own per purpose (blind indexes, the key service's credential) from the one master key."""
    return hmac.new(master_key, purpose.encode(), hashlib.sha256).digest()


def normalised(field: str, value: str) -> str:
    """What identity matching compares: emails case-folded, phones as digits with an optional leading plus."""
    value = value.strip()
    if field == "email":
        return value.lower()
    digits = "".join(ch for ch in value if ch.isdigit())
    return ("+" if value.startswith("+") else "") + digits


def blind_index(index_key: bytes, field: str, value: str) -> str:
    """HMAC-SHA256 of the normalised value: equal for the same person, useless without the key."""
    mac = hmac.new(index_key, f"{field}:{normalised(field, value)}".encode(), hashlib.sha256)
    return mac.hexdigest()


def seal_value(data_key: bytes, customer_id: str, field: str, value: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, value.encode(), f"{customer_id}:{field}".encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def open_value(data_key: bytes, customer_id: str, field: str, token: str) -> str:
    raw = base64.b64decode(token[len(PREFIX) :])
    return AESGCM(data_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{customer_id}:{field}".encode()).decode()


def needs_key(event_type: str, data: dict[str, Any]) -> bool:
    return any(data.get(name) is not None for name in PERSONAL_FIELDS.get(event_type, ()))


def seal_data(
    event_type: str, customer_id: str, data: dict[str, Any], key_id: str, data_key: bytes, index_key: bytes
) -> dict[str, Any]:
    """`data` with its personal fields sealed and the `sealed` description added; unchanged if it has none."""
    fields = [name for name in PERSONAL_FIELDS.get(event_type, ()) if data.get(name) is not None]
    if not fields:
        return data
    out = dict(data)
    indexes: dict[str, str] = {}
    for name in fields:
        value = data[name]
        text = value.isoformat() if isinstance(value, date) else str(value)
        if name in INDEXED_FIELDS:
            indexes[name] = blind_index(index_key, name, text)
        out[name] = seal_value(data_key, customer_id, name, text)
    out[SEALED] = {"v": SCHEME_VERSION, "key_id": key_id, "fields": fields, "index": indexes}
    return out


@dataclass(frozen=True)
class UnwrappedKey:
    key_id: str
    data_key: bytes


class KeyClient:
    """Fetches customers' data keys from ingest's key service; remembers them (and their absence) for a while."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        wrapper: KeyWrapper,
        ttl_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {credential}"}, timeout=5.0, transport=transport
        )
        self._wrapper = wrapper
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, UnwrappedKey | None]] = {}

    async def key(self, customer_id: str, max_age_s: float | None = None) -> UnwrappedKey | None:
        """The customer's key, from the cache when it is younger than `max_age_s` (default: the TTL)."""
        cached = self._cache.get(customer_id)
        now = time.monotonic()
        limit = self._ttl_s if max_age_s is None else min(max_age_s, self._ttl_s)
        if cached is not None and now - cached[0] < limit:
            return cached[1]
        try:
            response = await self._client.get(f"/v1/keys/{customer_id}")
        except httpx.HTTPError as exc:
            raise KeyServiceUnavailable(f"key service: {exc!r}") from exc
        if response.status_code == 404:
            found: UnwrappedKey | None = None
        elif response.status_code == 200:
            body = response.json()
            wrapped = base64.b64decode(body["wrapped_key"])
            try:
                found = UnwrappedKey(body["key_id"], self._wrapper.unwrap(wrapped, customer_id))
            except InvalidTag as exc:
                # Not this event's fault: this service's master key is not ingest's. Wait, drop nothing.
                raise KeyServiceUnavailable("the master key does not unwrap the key service's keys") from exc
        else:
            raise KeyServiceUnavailable(f"key service answered {response.status_code}")
        self._cache[customer_id] = (now, found)
        return found

    def forget(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._cache.pop(customer_id, None)

    async def aclose(self) -> None:
        await self._client.aclose()


KEY_SERVICE_PURPOSE = "retain key service"
# A cached key that does not open an event is asked for again once it is this old, not for every event of an
# erased customer's history.
REFRESH_AFTER_S = 1.0
BLIND_INDEX_PURPOSE = "retain blind index"


class PersonalData:
    """What a consuming service needs to read sealed events: the key client."""

    def __init__(self, keys: KeyClient) -> None:
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> PersonalData | None:
        master = master_key_of(settings)
        if master is None:
            return None
        wrapper = MasterKeyWrapper(master)
        client = KeyClient(settings.key_service_url, credential_for(master), wrapper, settings.key_cache_ttl_s)
        return cls(client)

    async def open_events(self, events: Sequence[CloudEvent]) -> None:
        """Opens every sealed event in place; fields of a destroyed (or replaced) key are dropped."""
        for event in events:
            if event.type == "customer.erased":
                self.keys.forget([str(event.data.get("customer_id") or event.subject)])
            sealed = event.data.get(SEALED)
            if not isinstance(sealed, dict):
                continue
            key = await self.keys.key(event.subject)
            if key is None or key.key_id != sealed.get("key_id"):
                # A cached answer from before the customer came back (erased, then a new key): ask again.
                key = await self.keys.key(event.subject, max_age_s=REFRESH_AFTER_S)
            opened = open_data(event.subject, event.data, key)
            event.data.clear()
            event.data.update(opened)


def open_data(customer_id: str, data: dict[str, Any], key: UnwrappedKey | None) -> dict[str, Any]:
    """`data` as it was posted, or without its personal fields when the key is gone or is not the one sealed with."""
    sealed = data.get(SEALED)
    if not isinstance(sealed, dict):
        return data
    out = {name: value for name, value in data.items() if name != SEALED}
    usable = key is not None and key.key_id == sealed.get("key_id")
    for name in sealed.get("fields", ()):
        token = out.get(name)
        if not isinstance(token, str) or not token.startswith(PREFIX):
            continue
        if not usable or key is None:
            out.pop(name, None)
            continue
        try:
            out[name] = open_value(key.data_key, customer_id, name, token)
        except (InvalidTag, ValueError):
            out.pop(name, None)
    return out


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def new_key_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(9)).decode()


def credential_for(master_key: bytes) -> str:
    return base64.urlsafe_b64encode(derived_secret(master_key, KEY_SERVICE_PURPOSE)).decode()
