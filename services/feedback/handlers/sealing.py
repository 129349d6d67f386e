"""Ticket texts, ticket notes and survey comments at rest, sealed with the customer's key (libs.common.personal).

They are the customer's own words, so they are personal data: stored as owned tokens (`pdo1:<customer id>:...`)
under the key of the customer they were written for, and opened only where someone reads them (the ticket views,
the themes of comments). A merge moves rows to the survivor without re-sealing: the token names its key. Erasing
the person destroys every key they were known under, so every copy, backups included, is unreadable from then on.
Sentiment and routing read the clear text as it arrives, before it is sealed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from libs.common import personal
from libs.common.personal import PersonalData, UnwrappedKey
from services.feedback.domain.tickets import Ticket

TICKET_TEXT = "ticket.text"
TICKET_NOTE = "ticket.note"
SURVEY_COMMENT = "survey.comment"


def _clear(value: str | None) -> bool:
    return bool(value) and personal.owner_of(value or "") is None


class Vault:
    def __init__(self, personal_data: PersonalData | None) -> None:
        self.personal = personal_data

    async def _key(self, customer_id: str) -> UnwrappedKey | None:
        if self.personal is None or not self.personal.sealing:
            return None
        return (await self.personal.keys_for([customer_id])).get(customer_id)

    async def seal_ticket(self, ticket: Ticket) -> Ticket:
        """The ticket with its text and notes sealed (those already sealed stay as they are)."""
        notes = [entry for entry in ticket.timeline if _clear(entry.detail.get("text"))]
        if not _clear(ticket.text) and not notes:
            return ticket
        key = await self._key(ticket.customer_id)
        if key is None:
            return ticket
        owner = ticket.customer_id
        timeline = tuple(
            replace(
                entry,
                detail=MappingProxyType(
                    {**entry.detail, "text": personal.seal_owned(key, owner, TICKET_NOTE, entry.detail["text"])}
                ),
            )
            if _clear(entry.detail.get("text"))
            else entry
            for entry in ticket.timeline
        )
        text = personal.seal_owned(key, owner, TICKET_TEXT, ticket.text) if _clear(ticket.text) else ticket.text
        return replace(ticket, text=text, timeline=timeline)

    async def seal_comment(self, customer_id: str, comment: str | None) -> str | None:
        if not _clear(comment):
            return comment
        key = await self._key(customer_id)
        return (
            comment
            if key is None or comment is None
            else personal.seal_owned(key, customer_id, SURVEY_COMMENT, comment)
        )

    async def keys_of(self, tokens: Iterable[str | None]) -> Mapping[str, UnwrappedKey | None]:
        owners = {owner for token in tokens if token and (owner := personal.owner_of(token)) is not None}
        if not owners or self.personal is None:
            return {}
        return await self.personal.keys.keys(sorted(owners))

    async def open_ticket_views(self, views: Sequence[dict[str, Any]]) -> None:
        """Opens the text and notes of ticket views in place; a destroyed key leaves them empty."""
        tokens: list[str | None] = []
        for view in views:
            tokens.append(view.get("text"))
            tokens += [(entry.get("detail") or {}).get("text") for entry in view.get("timeline") or ()]
        keys = await self.keys_of(tokens)
        for view in views:
            view["text"] = (
                personal.open_owned(keys, TICKET_TEXT, view["text"]) if view.get("text") else view.get("text")
            )
            if view["text"] is None:
                view["text"] = ""
            for entry in view.get("timeline") or ():
                detail = entry.get("detail") or {}
                if isinstance(detail.get("text"), str):
                    detail["text"] = personal.open_owned(keys, TICKET_NOTE, detail["text"]) or ""

    async def open_texts(self, texts: Sequence[tuple[str, str]]) -> list[str]:
        """(field, token or clear text) -> the clear texts, those whose key is gone left out."""
        keys = await self.keys_of(text for _, text in texts)
        opened = [personal.open_owned(keys, field, text) for field, text in texts]
        return [text for text in opened if text]
