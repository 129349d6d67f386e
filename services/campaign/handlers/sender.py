"""Delivers `pending` messages and alerts, and re-examines `deferred` ones when their time comes.

One row per transaction, claimed with FOR UPDATE SKIP LOCKED and held while the external call runs:
a second replica skips the row instead of sending it too, and the row becomes `sent` (with its
event in the outbox) in the same commit. If the process dies after the external call but before
that commit, the row is still `pending` and is sent once more; the idempotency key travels with
the delivery so that repeat is recognisable downstream.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.consumer import HandlerContext
from libs.common.contracts import AlertRaised, Contract, MessageSent, derived
from libs.common.envelope import CloudEvent
from libs.common.loops import poll_forever
from services.campaign.adapters import campaigns
from services.campaign.adapters.channels import ChannelNotConfigured, Channels, Delivery
from services.campaign.adapters.tables import actions
from services.campaign.domain.definitions import AlertAction, MessageAction
from services.campaign.handlers.deps import SOURCE, CampaignDeps
from services.campaign.handlers.firing import delivery_values, evaluate, parse_action, verdict_values

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, deps: CampaignDeps, sessions: async_sessionmaker[AsyncSession], channels: Channels) -> None:
        self.deps = deps
        self.sessions = sessions
        self.channels = channels

    async def run(self) -> None:
        await poll_forever(self.run_once, interval_s=self.deps.settings.sender_poll_interval_s, name="sender")

    async def run_once(self, limit: int = 1000) -> int:
        """Handles due rows until none is left (or `limit`); returns how many were handled."""
        handled = 0
        while handled < limit and await self._handle_one():
            handled += 1
        return handled

    async def _handle_one(self) -> bool:
        now = self.deps.now()
        async with self.sessions() as session, session.begin():
            row = (
                await session.execute(
                    select(actions)
                    .where(actions.c.status.in_(("pending", "deferred")), actions.c.next_attempt_at <= now)
                    .order_by(actions.c.next_attempt_at, actions.c.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                return False
            ctx = HandlerContext(session, self.deps.outbox)
            values: dict[str, Any] = {}
            if row.status == "deferred":
                values = await self._reconsider(ctx, row, now)
                if values.get("status") != "pending":
                    await self._update(session, row.id, values)
                    return True
            await self._deliver(ctx, row, {**row.payload, **values.get("payload", {})}, values, now)
        return True

    async def _reconsider(self, ctx: HandlerContext, row: Any, now: datetime) -> dict[str, Any]:
        """Quiet hours are over: every guard runs again on today's facts (consent may have changed)."""
        campaign = await campaigns.load_campaign(ctx.session, row.campaign_id)
        action = parse_action(row.payload["action"])
        if campaign is None:
            return {"status": "skipped", "reason": "campaign_deleted", "next_attempt_at": None}
        outcome, facts = await evaluate(self.deps, ctx, campaign, action, row.customer_id, now, exclude_action=row.id)
        if outcome is not None:
            return verdict_values(outcome, action)
        assert isinstance(action, MessageAction | AlertAction)  # only messages are ever deferred
        return {**await delivery_values(ctx, action, row.customer_id, facts, now), "decided_at": now}

    async def _deliver(
        self, ctx: HandlerContext, row: Any, payload: dict[str, Any], values: dict[str, Any], now: datetime
    ) -> None:
        delivery = Delivery(
            idempotency_key=row.idempotency_key,
            kind=row.kind,
            channel=row.channel or "email",
            to=self._recipient(row.kind, payload),
            subject=payload.get("subject"),
            body=payload.get("body", ""),
            customer_id=row.customer_id,
            campaign_id=row.campaign_id,
        )
        attempts = row.attempts + 1
        try:
            await self.channels.send(delivery)
        except Exception as exc:
            await self._failed(ctx.session, row.id, values, attempts, exc, now)
            return
        await self._update(
            ctx.session,
            row.id,
            {**values, "status": "sent", "reason": None, "attempts": attempts, "sent_at": now, "next_attempt_at": None},
        )
        await ctx.emit(*self._event(row, payload, now))

    def _recipient(self, kind: str, payload: dict[str, Any]) -> str | None:
        if kind == "alert":
            # The account manager's mailbox or hook comes from configuration, not from the customer.
            return self.deps.settings.alert_email
        to = payload.get("to")
        return str(to) if to is not None else None

    async def _failed(
        self,
        session: AsyncSession,
        row_id: int,
        values: dict[str, Any],
        attempts: int,
        exc: Exception,
        now: datetime,
    ) -> None:
        settings = self.deps.settings
        error = f"{type(exc).__name__}: {exc}"[:2000]
        # A missing address or endpoint will not fix itself by waiting: fail at once.
        give_up = attempts >= settings.send_max_attempts or isinstance(exc, ChannelNotConfigured)
        if give_up:
            log.warning("delivery failed for good", extra={"action_id": row_id, "error": error})
            await self._update(
                session,
                row_id,
                {
                    **values,
                    "status": "failed",
                    "reason": "send_failed",
                    "attempts": attempts,
                    "last_error": error,
                    "next_attempt_at": None,
                },
            )
            return
        delay = min(settings.send_backoff_s * 2 ** (attempts - 1), settings.send_backoff_max_s)
        await self._update(
            session,
            row_id,
            {
                **values,
                "status": "pending",
                "attempts": attempts,
                "last_error": error,
                "next_attempt_at": now + timedelta(seconds=delay),
            },
        )

    @staticmethod
    async def _update(session: AsyncSession, row_id: int, values: dict[str, Any]) -> None:
        await session.execute(update(actions).where(actions.c.id == row_id).values(**values))

    @staticmethod
    def _event(row: Any, payload: dict[str, Any], now: datetime) -> tuple[str, CloudEvent]:
        data: Contract
        if row.kind == "alert":
            data = AlertRaised(
                campaign_id=row.campaign_id,
                to=payload.get("to"),
                channel=payload.get("action", {}).get("channel"),
                message=payload.get("body"),
            )
        else:
            data = MessageSent(campaign_id=row.campaign_id, channel=row.channel, variant=row.variant)
        return derived(data, cause=row.idempotency_key, source=SOURCE, subject=row.customer_id, time=now)
