"""Tickets from ticket.* customer events."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, format_time
from services.feedback.adapters.tables import tickets


async def handle_ticket_opened(ctx: HandlerContext, event: CloudEvent) -> None:
    data = event.data
    await ctx.session.execute(
        pg_insert(tickets)
        .values(
            ticket_id=data["ticket_id"],
            customer_id=event.subject,
            status="open",
            priority=data.get("priority", "normal"),
            category=data.get("category", "general"),
            opened_at=event.time,
            timeline=[{"at": format_time(event.time), "status": "open", "text": data.get("text", "")}],
        )
        .on_conflict_do_nothing(index_elements=[tickets.c.ticket_id])
    )
