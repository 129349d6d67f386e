"""Applies customer events to profiles and announces each change on profile-changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, derived_event, format_time
from libs.common.topics import PROFILE_CHANGES
from services.profile.adapters.tables import customers


def apply(state: dict[str, Any], event: CloudEvent) -> dict[str, Any]:
    state = dict(state)
    if event.type == "purchase":
        state["order_count"] = state.get("order_count", 0) + 1
        state["total_spend"] = round(state.get("total_spend", 0.0) + float(event.data.get("amount", 0)), 4)
        last = state.get("last_purchase_at")
        if last is None or format_time(event.time) > last:
            state["last_purchase_at"] = format_time(event.time)
    elif event.type == "login":
        state["login_count"] = state.get("login_count", 0) + 1
    return state


async def handle_customer_events(ctx: HandlerContext, events: Sequence[CloudEvent]) -> None:
    for event in events:
        row = (
            await ctx.session.execute(
                select(customers.c.state).where(customers.c.customer_id == event.subject).with_for_update()
            )
        ).first()
        state = apply(row.state if row else {}, event)
        await ctx.session.execute(
            pg_insert(customers)
            .values(customer_id=event.subject, state=state)
            .on_conflict_do_update(
                index_elements=[customers.c.customer_id], set_={"state": state, "updated_at": func.now()}
            )
        )
        await ctx.emit(
            PROFILE_CHANGES,
            derived_event(
                cause=event,
                source="retain/profile",
                type="profile.updated",
                subject=event.subject,
                time=event.time,
                data={"cause": {"id": event.id, "type": event.type}, "metrics": state},
            ),
        )
