"""Rescoring a customer whenever their profile changes."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from libs.common.consumer import HandlerContext
from libs.common.envelope import CloudEvent, derived_event
from libs.common.topics import SCORE_CHANGES
from services.scoring.adapters.tables import scores
from services.scoring.domain.spend_tier import tier_crossing, tier_for_spend

SOURCE = "retain/scoring"


async def handle_profile_updated(ctx: HandlerContext, event: CloudEvent) -> None:
    facts = event.data.get("metrics", {})
    new_tier = tier_for_spend(float(facts.get("total_spend", 0.0)))
    old_tier = await ctx.session.scalar(
        select(scores.c.tier).where(scores.c.customer_id == event.subject).with_for_update()
    )
    score = {"tier": new_tier, "total_spend": facts.get("total_spend", 0.0)}
    await ctx.session.execute(
        pg_insert(scores)
        .values(customer_id=event.subject, tier=new_tier, facts=facts, score=score)
        .on_conflict_do_update(
            index_elements=[scores.c.customer_id],
            set_={"tier": new_tier, "facts": facts, "score": score, "updated_at": func.now()},
        )
    )
    crossing = tier_crossing(old_tier, new_tier)
    if crossing:
        await ctx.emit(
            SCORE_CHANGES,
            derived_event(
                cause=event,
                source=SOURCE,
                type="threshold.crossed",
                subject=event.subject,
                time=event.time,
                data={
                    "kind": crossing,
                    "old": old_tier,
                    "new": new_tier,
                    "reasons": [f"total spend {facts.get('total_spend')}"],
                },
            ),
        )
