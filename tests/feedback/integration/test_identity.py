"""Profile joins ids (profile.merged, profile.aliased): a helpdesk's own customer id gets the customer's SLA."""

from __future__ import annotations

from sqlalchemy import select

from services.feedback.adapters.tables import customers, survey_responses, tickets
from services.feedback.handlers import customers as customer_handlers
from services.feedback.handlers.surveys import survey_response_handler
from services.feedback.handlers.tickets import ticket_handler
from tests.feedback.integration.harness import Harness, event


async def owners(h: Harness) -> dict[str, tuple[str, str]]:
    """ticket_id -> (customer_id, tier at opening)."""
    rows = await h.rows(select(tickets.c.ticket_id, tickets.c.customer_id, tickets.c.tier))
    return {row["ticket_id"]: (row["customer_id"], row["tier"]) for row in rows}


async def test_a_helpdesk_id_joined_to_a_vip_brings_its_tickets_and_gets_the_vip_sla(harness: Harness) -> None:
    h = harness
    on_ticket = ticket_handler(h.deps)
    await h.handle(customer_handlers.on_score_change, event("score.changed", "c-1", {"tier": "high"}))
    # The helpdesk posts under its own id, which nobody has linked to c-1 yet: the default tier applies.
    await h.handle(on_ticket, event("ticket.opened", "hd-1", {"ticket_id": "t-1", "category": "billing"}))
    assert await owners(h) == {"t-1": ("hd-1", "low")}

    aliased = event("profile.aliased", "c-1", {"customer_id": "c-1", "alias_id": "hd-1"})
    await h.handle(customer_handlers.on_profile_change, aliased)
    await h.handle(customer_handlers.on_profile_change, aliased)  # redelivered: nothing changes

    # Its ticket is the customer's now (with the SLA it was opened with), and what the helpdesk posts under its id
    # counts for the customer.
    await h.handle(on_ticket, event("ticket.opened", "hd-1", {"ticket_id": "t-2", "category": "billing"}))
    await h.handle(on_ticket, event("ticket.updated", "hd-1", {"ticket_id": "t-1", "status": "in_progress"}))
    assert await owners(h) == {"t-1": ("c-1", "low"), "t-2": ("c-1", "high")}
    await h.handle(survey_response_handler(h.deps), event("survey.response", "hd-1", {"nps": 9}))
    [response] = await h.rows(select(survey_responses))
    assert (response["customer_id"], response["tier"]) == ("c-1", "high")
    assert [row["customer_id"] for row in await h.rows(select(customers))] == ["c-1"]


async def test_a_merge_keeps_the_tier_scored_last_and_erasure_forgets_the_old_ids(harness: Harness) -> None:
    h = harness
    on_ticket = ticket_handler(h.deps)
    scored = event("score.changed", "c-old", {"tier": "high"})
    await h.handle(customer_handlers.on_score_change, scored)
    await h.handle(customer_handlers.on_score_change, event("score.changed", "c-new", {"tier": "low"}, scored.time))
    later = event("score.changed", "c-old", {"tier": "medium"}, scored.time.replace(hour=13))
    await h.handle(customer_handlers.on_score_change, later)

    merged = event("profile.merged", "c-new", {"survivor_id": "c-new", "merged_id": "c-old"})
    await h.handle(customer_handlers.on_profile_change, merged)
    assert [(row["customer_id"], row["tier"]) for row in await h.rows(select(customers))] == [("c-new", "medium")]

    await h.handle(customer_handlers.on_profile_change, event("customer.erased", "c-new", {"customer_id": "c-new"}))
    # The old id no longer leads to the erased customer: a ticket from after the erasure is the old id's own.
    await h.handle(on_ticket, event("ticket.opened", "c-old", {"ticket_id": "t-9"}, scored.time.replace(hour=14)))
    assert await owners(h) == {"t-9": ("c-old", "low")}
