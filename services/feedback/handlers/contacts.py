"""Recording that someone reached out to a customer (from the console's at-risk worklist, or a CRM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.contracts import FeedbackContacted, derived
from libs.common.outbox import Outbox
from services.feedback.adapters import contacts
from services.feedback.adapters.tables import aliases
from services.feedback.handlers.deps import SOURCE, FeedbackDeps


@dataclass(frozen=True)
class Contact:
    customer_id: str
    contact_key: str
    contacted_by: str
    channel: str
    outcome: str
    note: str | None


async def record_contact(deps: FeedbackDeps, session: AsyncSession, outbox: Outbox, contact: Contact) -> bool:
    """False when this contact (same key) was recorded before; then nothing is announced again."""
    customer_id = await aliases.lock_and_resolve(session, contact.customer_id)
    now: datetime = deps.clock()
    contact_id = await contacts.insert_contact(
        session,
        {
            "contact_key": contact.contact_key,
            "customer_id": customer_id,
            "contacted_by": contact.contacted_by,
            "channel": contact.channel,
            "outcome": contact.outcome,
            "note": contact.note,
            "contacted_at": now,
        },
    )
    if contact_id is None:
        return False
    topic, event = derived(
        FeedbackContacted.model_validate(
            {"channel": contact.channel, "outcome": contact.outcome, "contacted_by": contact.contacted_by}
        ),
        cause=f"contact:{contact.contact_key}",
        source=SOURCE,
        subject=customer_id,
        time=now,
    )
    await outbox.add(session, topic, event)
    return True


async def contacts_of(session: AsyncSession, customer_id: str, limit: int) -> list[dict[str, object]]:
    """A customer's contacts, newest first, as the API shows them."""
    rows = await contacts.contacts_of(session, customer_id, limit)
    return [
        {
            "contact_id": row["contact_key"],
            "contacted_by": row["contacted_by"],
            "channel": row["channel"],
            "outcome": row["outcome"],
            "note": row["note"],
            "contacted_at": row["contacted_at"].isoformat(),
        }
        for row in rows
    ]
