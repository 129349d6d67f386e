"""Saving changed profiles: one upsert, segment membership, and one `profile.updated` per customer.

Shared by the consumer (many customers per batch) and the HTTP API (tags, segments), so every path that changes
a profile announces it the same way.
"""

from __future__ import annotations

import functools
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from libs.common import contracts
from libs.common.contracts import ProfileUpdated, derived
from libs.common.envelope import CloudEvent
from libs.common.outbox import Outbox
from libs.common.personal import UnwrappedKey
from libs.common.topics import PROFILE_CHANGES
from services.profile.adapters import profiles
from services.profile.adapters.profiles import ProfileRow, StoredProfile
from services.profile.domain import (
    INTERNAL_FIELDS,
    Condition,
    InvalidCondition,
    ProfileState,
    announced_metrics,
    changed_between,
    flat_view,
    membership_changes,
    new_profile,
    normalise,
    parse_condition,
)
from services.profile.handlers.sealing import Vault, has_personal, sealed_copy

SOURCE = "retain/profile"


@functools.cache
def _empty_document() -> dict[str, Any]:
    return new_profile("").to_dict()


@dataclass(frozen=True, slots=True)
class Cause:
    """What made a profile change: an upstream event, a tag edit or a segment change."""

    id: str
    type: str
    time: datetime


class Working:
    """A profile being changed inside one transaction.

    `before` is its stored document, used only to compute the change set: after a save it is refreshed for the
    sections that could have changed, so internal bookkeeping fields (days, stamps, ...) in it may be stale.
    `touched` lists the top-level fields changed since `state` was last normalised (see `apply_in_place`); None means
    unknown, and assigning `state` sets it to None, so a replaced state is normalised and compared in full.
    """

    __slots__ = ("_state", "before", "cause", "dirty", "seen", "touched")

    def __init__(self, state: ProfileState, before: dict[str, Any], seen: set[str]) -> None:
        self._state = state
        self.before = before
        self.seen = seen
        self.touched: set[str] | None = set()
        self.cause: Cause | None = None
        self.dirty = False

    @property
    def state(self) -> ProfileState:
        return self._state

    @state.setter
    def state(self, state: ProfileState) -> None:
        self._state = state
        self.touched = None

    @classmethod
    def fresh(cls, customer_id: str) -> Working:
        # `before` is only read: a shallow copy of one empty document stands for every new profile's.
        before = dict(_empty_document())
        before["customer_id"] = customer_id
        return cls(state=new_profile(customer_id), before=before, seen=set())

    @classmethod
    def of(cls, state: ProfileState, before: dict[str, Any]) -> Working:
        """`state` must be normalised (as every stored or cached one is)."""
        return cls(state=state, before=before, seen={applied.id for applied in state.applied_events})

    @classmethod
    def parse(cls, document: dict[str, Any]) -> Working:
        """From the stored document, parsed and opened (`Vault.open_texts`)."""
        return cls.of(ProfileState.from_dict(document), document)

    def touch(self, cause: Cause) -> None:
        self.dirty = True
        self.cause = cause


class StateCache:
    """Parsed profiles by customer id, valid while the stored `rev` is the one they were saved with.

    Parsing the stored document into the model is the largest per-customer cost of a batch; a consumer sees the
    same customers again and again on its partitions. An entry is taken out while a transaction works on it and put
    back with a fresh random `rev` once the upsert ran: if that transaction then rolls back, the stored `rev`
    differs and the entry is simply never hit.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[int, ProfileState, dict[str, Any]]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def held_revs(self, customer_ids: Iterable[str]) -> dict[str, int]:
        """The rev of each of `customer_ids` held here, for `profiles.lock_profiles`."""
        entries = self._entries
        return {customer_id: entries[customer_id][0] for customer_id in customer_ids if customer_id in entries}

    def take(self, stored: StoredProfile) -> Working | None:
        """The profile to work on when the cache holds `stored.rev`; else None (parse the stored document)."""
        entry = self._entries.pop(stored.customer_id, None)
        if entry is not None and entry[0] == stored.rev:
            self.hits += 1
            return Working.of(entry[1], entry[2])
        return None

    def miss(self, document: dict[str, Any]) -> Working:
        """A profile the cache did not hold, from its stored document (parsed and opened)."""
        self.misses += 1
        return Working.parse(document)

    def put(self, customer_id: str, rev: int, state: ProfileState, document: dict[str, Any]) -> None:
        if self.max_entries <= 0:
            return
        self._entries[customer_id] = (rev, state, document)
        self._entries.move_to_end(customer_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, customer_ids: Iterable[str]) -> None:
        for customer_id in customer_ids:
            self._entries.pop(customer_id, None)


class SegmentDefinitions:
    """Parsed conditions by (segment id, version): a condition is parsed once, not once per batch."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, int], Condition] = {}

    async def load(self, session: Any) -> dict[str, Condition]:
        current: dict[str, Condition] = {}
        for row in await profiles.all_segments(session):
            key = (row.id, row.version)
            if key not in self._parsed:
                try:
                    self._parsed[key] = parse_condition(row.condition)
                except InvalidCondition:
                    continue  # the API validates before storing; a bad stored row must not stop the consumer
            current[row.id] = self._parsed[key]
        live = set(current)
        self._parsed = {key: value for key, value in self._parsed.items() if key[0] in live}
        return current


def profile_row(state: ProfileState, state_json: str, rev: int, vault: Vault | None = None) -> ProfileRow:
    identities = state.identities
    return ProfileRow(
        customer_id=state.customer_id,
        rev=rev,
        state_json=state_json,
        email=identities.email if vault is None else vault.column("email", identities.email),
        phone=identities.phone if vault is None else vault.column("phone", identities.phone),
        erp_id=identities.erp_id,
        shop_id=identities.shop_id,
        tags_json=orjson.dumps(state.tags).decode(),
    )


_SERIALISER = ProfileState.__pydantic_serializer__


def prepare_save(
    working: Working, rev: int, vault: Vault | None = None, key: UnwrappedKey | None = None
) -> tuple[ProfileRow, frozenset[str], dict[str, Any]]:
    """Normalise a changed profile; return its row, its change set and the `before` document for its next save.

    The row's JSON comes straight from pydantic's serialiser (the same document `ProfileState.to_dict()` gives);
    only the fields in `touched` are turned into Python values for the comparison, since building the whole
    document as a dict cost more than serialising it. With `key`, the row holds the personal fields sealed, while
    the returned document (kept by the state cache) holds them opened.
    """
    state, touched = working.state, working.touched
    normalise(state, touched)
    clear_json: str | None = None
    if key is not None and has_personal(state):
        # Tokens in typed fields (a birthday) are expected here: the copy is only serialised, never validated.
        state_json = _SERIALISER.to_json(sealed_copy(state, key), warnings=False).decode()
    else:
        state_json = clear_json = _SERIALISER.to_json(state).decode()
    if touched is None:
        after = orjson.loads(clear_json if clear_json is not None else _SERIALISER.to_json(state))
        document = after
    else:
        compared = touched - INTERNAL_FIELDS
        after = _SERIALISER.to_python(state, mode="json", include=compared) if compared else {}
        document = {**working.before, **after}
    return profile_row(state, state_json, rev, vault), changed_between(working.before, after), document


async def save_and_announce(
    session: Any,
    outbox: Outbox,
    workings: Sequence[Working],
    *,
    as_of: datetime,
    segments: Mapping[str, Condition],
    cache: StateCache | None = None,
    always_announce: bool = False,
    vault: Vault | None = None,
) -> list[CloudEvent]:
    """Normalise, upsert, recompute segment membership and emit profile.updated for every dirty profile.

    Returns the events written to the outbox. A customer whose document did not change and whose segments did not
    change is saved (its `applied_events` moved) but not announced, unless `always_announce`.
    """
    dirty = [working for working in workings if working.dirty]
    if not dirty:
        return []
    rows: list[ProfileRow] = []
    changes: dict[str, frozenset[str]] = {}
    keys = {} if vault is None else await vault.keys_to_seal(working.state for working in dirty)
    for working in dirty:
        rev = secrets.randbits(63)
        key = keys.get(working.state.customer_id)
        row, changes[working.state.customer_id], document = prepare_save(working, rev, vault, key)
        rows.append(row)
        if cache is not None:
            cache.put(working.state.customer_id, rev, working.state, document)
    await profiles.save_profiles(session, rows)

    entered_by: dict[str, set[str]] = {}
    left_by: dict[str, set[str]] = {}
    if segments:
        ids = [working.state.customer_id for working in dirty]
        current = await profiles.memberships(session, ids)
        entered_pairs: list[tuple[str, str]] = []
        left_pairs: list[tuple[str, str]] = []
        for working in dirty:
            customer_id = working.state.customer_id
            entered, left = membership_changes(
                current.get(customer_id, set()), segments, flat_view(working.state, as_of)
            )
            entered_by[customer_id], left_by[customer_id] = entered, left
            entered_pairs += [(segment_id, customer_id) for segment_id in entered]
            left_pairs += [(segment_id, customer_id) for segment_id in left]
        await profiles.change_memberships(session, entered_pairs, left_pairs)

    events: list[CloudEvent] = []
    for working in dirty:
        customer_id = working.state.customer_id
        changed = changes[customer_id]
        entered_ids = sorted(entered_by.get(customer_id, ()))
        left_ids = sorted(left_by.get(customer_id, ()))
        if not (changed or entered_ids or left_ids or always_announce) or working.cause is None:
            continue
        announced = profile_updated(working.state, working.cause, sorted(changed), as_of, entered_ids, left_ids)
        if vault is not None:
            vault.seal_announcement(announced, keys.get(customer_id))
        events.append(announced)
    await outbox.add(session, PROFILE_CHANGES, *events)
    return events


def profile_updated(
    state: ProfileState,
    cause: Cause,
    changed: list[str],
    as_of: datetime,
    entered: list[str] | None = None,
    left: list[str] | None = None,
) -> CloudEvent:
    update = ProfileUpdated(
        cause=contracts.Cause(id=cause.id, type=cause.type),
        version=state.event_count,
        changed=changed,
        metrics=announced_metrics(state, as_of),
        segments_entered=entered or [],
        segments_left=left or [],
    )
    return derived(update, cause=cause.id, source=SOURCE, subject=state.customer_id, time=cause.time)[1]
