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
import functools
import hashlib
import hmac
import os
import time
from collections.abc import Iterable, Mapping, Sequence
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
    # Profile announces a customer's contact facts (campaign needs them to reach the person) sealed again.
    "profile.updated": ("metrics.name", "metrics.email", "metrics.phone", "metrics.birthday"),
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
    # hmac.digest is the one-shot C path: a tenth of hmac.new's cost, paid for every email and phone seen.
    return hmac.digest(index_key, f"{field}:{normalised(field, value)}".encode(), "sha256").hex()


@functools.lru_cache(maxsize=8192)
def _aead(data_key: bytes) -> AESGCM:
    # Setting up a cipher costs more than sealing a short value with it; a batch meets the same keys again.
    return AESGCM(data_key)


def seal_value(data_key: bytes, customer_id: str, field: str, value: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = _aead(data_key).encrypt(nonce, value.encode(), f"{customer_id}:{field}".encode())
    return PREFIX + base64.b64encode(nonce + sealed).decode()


def open_value(data_key: bytes, customer_id: str, field: str, token: str) -> str:
    raw = base64.b64decode(token[len(PREFIX) :])
    return _aead(data_key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{customer_id}:{field}".encode()).decode()


def _get(data: dict[str, Any], path: str) -> Any:
    """The value at a dotted path ("metrics.email"); None when any step is missing."""
    node: Any = data
    for step in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


def _parent(data: dict[str, Any], path: str, copy: bool) -> tuple[dict[str, Any] | None, str]:
    """The dict holding the last step of `path` (copied on the way down when `copy`, so the input stays intact)."""
    *steps, last = path.split(".")
    node = data
    for step in steps:
        child = node.get(step)
        if not isinstance(child, dict):
            return None, last
        if copy:
            child = dict(child)
            node[step] = child
        node = child
    return node, last


def needs_key(event_type: str, data: dict[str, Any]) -> bool:
    return any(_get(data, name) is not None for name in PERSONAL_FIELDS.get(event_type, ()))


def seal_data(
    event_type: str, customer_id: str, data: dict[str, Any], key_id: str, data_key: bytes, index_key: bytes
) -> dict[str, Any]:
    """`data` with its personal fields sealed and the `sealed` description added; unchanged if it has none."""
    fields = [name for name in PERSONAL_FIELDS.get(event_type, ()) if _get(data, name) is not None]
    if not fields:
        return data
    out = dict(data)
    indexes: dict[str, str] = {}
    for name in fields:
        holder, last = _parent(out, name, copy=True)
        assert holder is not None  # _get found a value on this path
        value = holder[last]
        text = value.isoformat() if isinstance(value, date) else str(value)
        if name in INDEXED_FIELDS:
            indexes[name] = blind_index(index_key, name, text)
        holder[last] = seal_value(data_key, customer_id, name, text)
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
        return (await self.keys([customer_id], max_age_s))[customer_id]

    async def keys(
        self, customer_ids: Iterable[str], max_age_s: float | None = None, create: bool = False
    ) -> dict[str, UnwrappedKey | None]:
        """Each customer's key (None: none, or destroyed); one request for all the cache does not hold.

        `create` asks the key service to make a key for a customer who has none: a service that keeps personal data
        at rest under an id no sealed event came with (a merge survivor, a survey answered on feedback's page).
        """
        now = time.monotonic()
        limit = self._ttl_s if max_age_s is None else min(max_age_s, self._ttl_s)
        found: dict[str, UnwrappedKey | None] = {}
        wanted: list[str] = []
        for customer_id in dict.fromkeys(customer_ids):
            cached = self._cache.get(customer_id)
            if cached is not None and now - cached[0] < limit and (cached[1] is not None or not create):
                found[customer_id] = cached[1]
            else:
                wanted.append(customer_id)
        for start in range(0, len(wanted), MAX_KEYS_PER_REQUEST):
            chunk = wanted[start : start + MAX_KEYS_PER_REQUEST]
            try:
                response = await self._client.post("/v1/keys", json={"customer_ids": chunk, "create": create})
            except httpx.HTTPError as exc:
                raise KeyServiceUnavailable(f"key service: {exc!r}") from exc
            if response.status_code != 200:
                raise KeyServiceUnavailable(f"key service answered {response.status_code}")
            answered = {item["customer_id"]: item for item in response.json()["keys"]}
            for customer_id in chunk:
                item = answered.get(customer_id)
                key: UnwrappedKey | None = None
                if item is not None:
                    try:
                        unwrapped = self._wrapper.unwrap(base64.b64decode(item["wrapped_key"]), customer_id)
                    except InvalidTag as exc:
                        # Not this event's fault: this service's master key is not ingest's. Wait, drop nothing.
                        raise KeyServiceUnavailable("the master key does not unwrap the key service's keys") from exc
                    key = UnwrappedKey(item["key_id"], unwrapped)
                self._cache[customer_id] = (now, key)
                found[customer_id] = key
        return found

    def forget(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._cache.pop(customer_id, None)

    async def aclose(self) -> None:
        await self._client.aclose()


KEY_SERVICE_PURPOSE = "retain key service"
# Customers per key-service request: a consumer batch's keys in one or a few round trips.
MAX_KEYS_PER_REQUEST = 1000
# A cached key that does not open an event is asked for again once it is this old, not for every event of an
# erased customer's history.
REFRESH_AFTER_S = 1.0
BLIND_INDEX_PURPOSE = "retain blind index"


class PersonalData:
    """What a service needs for personal data: the key client, the blind-index key, and whether to seal at rest."""

    def __init__(self, keys: KeyClient, index_key: bytes | None = None, sealing: bool = True) -> None:
        self.keys = keys
        self.index_key = index_key
        # Off (RETAIN_PERSONAL_DATA_ENCRYPTION=false, the benchmarks' baseline): events and rows are kept clear;
        # sealed events from before are still opened.
        self.sealing = sealing and index_key is not None

    @classmethod
    def from_settings(cls, settings: Settings) -> PersonalData | None:
        master = master_key_of(settings)
        if master is None:
            return None
        wrapper = MasterKeyWrapper(master)
        client = KeyClient(settings.key_service_url, credential_for(master), wrapper, settings.key_cache_ttl_s)
        return cls(client, derived_secret(master, BLIND_INDEX_PURPOSE), settings.personal_data_encryption)

    def index(self, field: str, value: str) -> str:
        """What a service stores and looks up instead of an email or phone: its blind index (clear when not sealing)."""
        if not self.sealing or self.index_key is None:
            return normalised(field, value)
        return blind_index(self.index_key, field, value)

    async def keys_for(self, customer_ids: Iterable[str]) -> dict[str, UnwrappedKey]:
        """Keys to seal with at rest, created where missing (empty when not sealing)."""
        if not self.sealing:
            return {}
        found = await self.keys.keys(customer_ids, create=True)
        return {customer_id: key for customer_id, key in found.items() if key is not None}

    async def open_events(self, events: Sequence[CloudEvent]) -> None:
        """Opens every sealed event in place; fields of a destroyed (or replaced) key are dropped.

        The keys of a batch come in one request (cached ones not at all); an event sealed with a key other than the
        cached one (the customer was erased and came back) asks once more, for all such customers together.
        """
        for event in events:
            if event.type == "customer.erased":
                self.keys.forget([str(event.data.get("customer_id") or event.subject)])
        sealed_events = [event for event in events if isinstance(event.data.get(SEALED), dict)]
        if not sealed_events:
            return
        keys = await self.keys.keys(event.subject for event in sealed_events)
        stale = {
            event.subject
            for event in sealed_events
            if (found := keys[event.subject]) is None or found.key_id != event.data[SEALED].get("key_id")
        }
        if stale:
            keys.update(await self.keys.keys(stale, max_age_s=REFRESH_AFTER_S))
        for event in sealed_events:
            opened = open_data(event.subject, event.data, keys[event.subject])
            event.data.clear()
            event.data.update(opened)


def strip_personal(events: Sequence[CloudEvent]) -> None:
    """Every sealed event in place without its personal fields, as if the key were gone (nothing fetched)."""
    for event in events:
        if isinstance(event.data.get(SEALED), dict):
            stripped = open_data(event.subject, event.data, None)
            event.data.clear()
            event.data.update(stripped)


def open_data(customer_id: str, data: dict[str, Any], key: UnwrappedKey | None) -> dict[str, Any]:
    """`data` as it was posted, or without its personal fields when the key is gone or is not the one sealed with."""
    sealed = data.get(SEALED)
    if not isinstance(sealed, dict):
        return data
    out = {name: value for name, value in data.items() if name != SEALED}
    usable = key is not None and key.key_id == sealed.get("key_id")
    for name in sealed.get("fields", ()):
        if not isinstance(name, str):
            continue
        holder, last = _parent(out, name, copy=True)
        token = None if holder is None else holder.get(last)
        if holder is None or not isinstance(token, str) or not token.startswith(PREFIX):
            continue
        if not usable or key is None:
            # Kept as an absent value (None) inside nested documents, whose schema names the field.
            if "." in name:
                holder[last] = None
            else:
                holder.pop(last, None)
            continue
        try:
            holder[last] = open_value(key.data_key, customer_id, name, token)
        except (InvalidTag, ValueError):
            if "." in name:
                holder[last] = None
            else:
                holder.pop(last, None)
    return out


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def new_key_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(9)).decode()


def credential_for(master_key: bytes) -> str:
    return base64.urlsafe_b64encode(derived_secret(master_key, KEY_SERVICE_PURPOSE)).decode()


# A value kept at rest by a service whose rows can move between customer ids (a merge moves a ticket to the
# survivor): the token names the id whose key sealed it, so it still opens after the move, and erasing the person
# (every id they were known under) destroys that key too.
OWNED_PREFIX = "pdo1:"


def seal_owned(key: UnwrappedKey, owner: str, field: str, value: str) -> str:
    return f"{OWNED_PREFIX}{owner}:{seal_value(key.data_key, owner, field, value)}"


def owner_of(token: str) -> str | None:
    """The customer id whose key sealed an owned token; None for anything else (a clear value)."""
    if not token.startswith(OWNED_PREFIX):
        return None
    owner, separator, rest = token[len(OWNED_PREFIX) :].rpartition(":" + PREFIX.rstrip(":"))
    return owner if separator and rest.startswith(":") else None


def open_owned(keys: Mapping[str, UnwrappedKey | None], field: str, token: str) -> str | None:
    """The clear value of an owned token; None when its key is gone (the person was erased). A clear value is
    returned as it is (written before sealing was on)."""
    owner = owner_of(token)
    if owner is None:
        return token
    key = keys.get(owner)
    if key is None:
        return None
    try:
        return open_value(key.data_key, owner, field, token[len(OWNED_PREFIX) + len(owner) + 1 :])
    except (InvalidTag, ValueError):
        return None
