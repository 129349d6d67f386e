"""When time-triggered campaigns are due for a customer: the pending `scheduled_triggers` rows each (campaign,
customer) should have and the moment each fires, computed from the customer's facts without reading the database.
The consumer batch (handlers/batch.py) and the scheduler (handlers/scheduler.py) both schedule through these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.campaign.adapters import bulk
from services.campaign.adapters.campaigns import StoredCampaign
from services.campaign.domain.definitions import TIME_TRIGGER_KINDS
from services.campaign.domain.triggers import CustomerFacts, due_dates, trigger_window
from services.campaign.handlers.deps import CampaignDeps


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment is not None else None


def customer_facts_for_schedule(facts: Mapping[str, Any]) -> CustomerFacts:
    return CustomerFacts(
        birthday=facts.get("birthday"),
        first_purchase=_day(facts.get("first_purchase_at")),
        last_purchase=_day(facts.get("last_purchase_at")),
        predicted_next_purchase=_day(facts.get("predicted_next_purchase_at")),
        last_activity=_day(facts.get("last_activity_at")),
    )


def _zone(name: str | None, default: str) -> ZoneInfo:
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def fire_time(due: date, facts: Mapping[str, Any], deps: CampaignDeps) -> datetime:
    """A due *date* becomes a moment in waking hours of the customer's own zone."""
    zone = _zone(facts.get("timezone"), deps.settings.default_timezone)
    return datetime.combine(due, deps.settings.scheduled_fire_local_time, tzinfo=zone).astimezone(UTC)


def time_triggered(candidates: Iterable[StoredCampaign]) -> list[StoredCampaign]:
    return [c for c in candidates if c.definition.trigger.kind in TIME_TRIGGER_KINDS]


def empty_facts(customer_id: str) -> dict[str, Any]:
    """An unknown customer: every fact None, as a new row would read."""
    return {
        **dict.fromkeys(bulk.FACT_COLUMNS),
        "customer_id": customer_id,
        "consents": {},
        "segments": [],
        "opted_out": False,
    }


def schedule_rows(
    deps: CampaignDeps,
    campaigns: list[StoredCampaign],
    facts: Mapping[str, Mapping[str, Any]],
    when: Mapping[str, datetime],
) -> tuple[dict[tuple[str, str], list[str]], list[dict[str, Any]]]:
    """The pending rows each (campaign, customer) should have, as `handlers.scheduler.reschedule` computes them."""
    keep: dict[tuple[str, str], list[str]] = {}
    due: list[dict[str, Any]] = []
    for customer_id, at in when.items():
        customer = facts[customer_id]
        schedule_facts = customer_facts_for_schedule(customer)
        today: date = deps.now(at).date()
        for campaign in campaigns:
            trigger = campaign.definition.trigger
            days = due_dates(trigger, schedule_facts, today)
            windows = [trigger_window(trigger, datetime.combine(d, time.min, tzinfo=UTC)) for d in days]
            keep[(campaign.id, customer_id)] = windows
            for day, window in zip(days, windows, strict=True):
                due.append(
                    {
                        "campaign_id": campaign.id,
                        "customer_id": customer_id,
                        "fire_at": fire_time(day, customer, deps),
                        "window": window,
                    }
                )
    return keep, due
