"""Outreach to a customer: recorded by account managers (feedback:write), read with the customer (customers:read)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from libs.common.events import Identifier, LongText, ShortText
from services.feedback.entrypoints.common import Deps, Reader, Session, Writer
from services.feedback.handlers.contacts import Contact, contacts_of, record_contact

router = APIRouter(prefix="/v1", tags=["contacts"])


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact_id: Identifier | None = Field(default=None, description="Caller's id: a repeat is recorded once.")
    contacted_by: ShortText = Field(min_length=1)
    channel: Literal["phone", "email", "sms", "wecom", "visit", "other"] = "phone"
    outcome: Literal["reached", "no_answer", "left_message", "declined", "resolved"] = "reached"
    note: LongText | None = None


@router.post("/customers/{customer_id}/contacts", status_code=201, summary="Record a contact; emits feedback.contacted")
async def post_contact(
    customer_id: Identifier, body: ContactIn, request: Request, session: Session, deps: Deps, _: Writer
) -> dict[str, Any]:
    contact = Contact(
        customer_id=customer_id,
        contact_key=body.contact_id or f"ct-{uuid.uuid4().hex}",
        contacted_by=body.contacted_by,
        channel=body.channel,
        outcome=body.outcome,
        note=body.note,
    )
    async with session.begin():
        recorded = await record_contact(deps, session, request.app.state.runtime.outbox, contact)
    return {
        "customer_id": customer_id,
        "contact_id": contact.contact_key,
        "status": "recorded" if recorded else "duplicate",
    }


@router.get("/customers/{customer_id}/contacts", summary="Contacts with a customer, newest first")
async def list_contacts(
    customer_id: Identifier, session: Session, _: Reader, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> dict[str, Any]:
    return {"customer_id": customer_id, "items": await contacts_of(session, customer_id, limit)}
