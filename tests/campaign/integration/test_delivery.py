"""Exactly-once delivery: channel adapters, retries, duplicates, crashes, replicas, erasure."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from services.campaign.adapters import tables
from services.campaign.adapters.channels import Delivery, EmailChannel, WebhookChannel
from tests.campaign.integration.harness import NOON, Harness, SmtpServer, WebhookServer, event

STAGE = {"kind": "stage_entered", "stage": "at_risk"}
SMS = {"type": "message", "channel": "sms", "body": "Hello {name}, you have {points} points"}


async def customer(h: Harness, cid: str, **metrics: Any) -> None:
    base = {"name": "Bo", "email": f"{cid}@example.com", "phone": "+15550100", "consents": {"sms": True, "email": True}}
    await h.handle(h.handlers.on_profile_change, event("profile.updated", cid, {"metrics": {**base, **metrics}}))


async def at_risk(h: Harness, cid: str, event_id: str | None = None) -> None:
    data = {"kind": "stage_changed", "old": "active", "new": "at_risk"}
    await h.handle(h.handlers.on_score_change, event("threshold.crossed", cid, data, event_id=event_id))


async def sms_campaign(h: Harness, gateway: WebhookServer) -> None:
    await h.add_campaign("m", {"name": "m", "trigger": STAGE, "actions": [SMS]})
    h.channels.messages["sms"] = WebhookChannel(gateway.url, 5)


async def test_email_over_smtp_carries_the_idempotency_key(harness: Harness) -> None:
    h = harness
    email = {"type": "message", "channel": "email", "subject": "For {name}", "body": "Our {favourite_category} picks"}
    await h.add_campaign("e", {"name": "e", "trigger": STAGE, "actions": [email]})
    await customer(h, "c-1", favourite_category="tea")
    await at_risk(h, "c-1")
    with SmtpServer() as smtp:
        h.channels.messages["email"] = EmailChannel(h.settings.model_copy(update={"smtp_port": smtp.port}))
        assert await h.sender().run_once() == 1
        [mail] = smtp.sink.messages
    [row] = await h.actions("c-1")
    assert row.status == "sent" and row.sent_at is not None
    assert mail["To"] == "c-1@example.com"
    assert mail["Subject"] == "For Bo"
    assert mail["Message-ID"] == f"<{row.idempotency_key}@retain>"
    body = mail.get_content()  # type: ignore[attr-defined]
    assert body.splitlines()[0] == "Our tea picks"
    # A marketing mail: the unsubscribe link in its footer and as RFC 8058 one-click headers.
    link = mail["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{h.settings.unsubscribe_base_url}/unsubscribe?token=")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body.rstrip().endswith(f"Unsubscribe: {link}")
    assert await h.outbox_types() == ["message.sent"]


async def test_alert_by_webhook(harness: Harness) -> None:
    h = harness
    alert = {"type": "alert", "channel": "webhook", "message": "{name} scored low"}
    await h.add_campaign("a", {"name": "a", "trigger": {"kind": "low_nps"}, "actions": [alert]})
    await customer(h, "c-1")
    await h.handle(h.handlers.on_feedback, event("feedback.received", "c-1", {"score_type": "nps", "score": 2}))
    async with WebhookServer() as hook:
        h.channels.alerts["webhook"] = WebhookChannel(hook.url, 5)
        assert await h.sender().run_once() == 1
        [(headers, body)] = hook.calls
    assert body["text"] == "Bo scored low" and body["kind"] == "alert"
    assert headers["idempotency-key"] == (await h.actions("c-1"))[0].idempotency_key
    assert await h.outbox_types() == ["alert.raised"]


async def test_duplicate_trigger_events_send_once(harness: Harness) -> None:
    h = harness
    async with WebhookServer() as gateway:
        await sms_campaign(h, gateway)
        await customer(h, "c-1")
        await at_risk(h, "c-1", event_id="same")
        await at_risk(h, "c-1", event_id="same")  # redelivered by Kafka after a lost offset commit
        await at_risk(h, "c-1")  # re-announced by scoring under a new id, same day: same window
        assert await h.sender().run_once() == 1
        assert await h.sender().run_once() == 0
        assert len(gateway.calls) == 1
        assert gateway.calls[0][1]["text"] == "Hello Bo, you have 0 points"
    assert [r.status for r in await h.actions("c-1")] == ["sent"]


class CrashAfterSending:
    """Delivers, then dies before the sender can commit: the worst moment for exactly-once."""

    def __init__(self, inner: WebhookChannel) -> None:
        self.inner = inner

    async def send(self, delivery: Delivery) -> None:
        await self.inner.send(delivery)
        raise asyncio.CancelledError  # not an Exception: nothing in the sender swallows it


async def test_crash_between_deciding_and_sending_sends_once_more_at_most(harness: Harness) -> None:
    h = harness
    async with WebhookServer() as gateway:
        await sms_campaign(h, gateway)
        await customer(h, "c-1")
        await customer(h, "c-2")
        # c-1: decided (pending), then the process died before any sender ran.
        await at_risk(h, "c-1")
        assert [r.status for r in await h.actions("c-1")] == ["pending"]
        assert await h.sender().run_once() == 1  # a fresh instance after the restart
        assert len(gateway.calls) == 1

        # c-2: the external call went out, the commit did not.
        await at_risk(h, "c-2")
        real = h.channels.messages["sms"]
        assert isinstance(real, WebhookChannel)
        h.channels.messages["sms"] = CrashAfterSending(real)
        try:
            await h.sender().run_once()
        except asyncio.CancelledError:
            pass
        h.channels.messages["sms"] = real
        [row] = await h.actions("c-2")
        assert row.status == "pending"  # rolled back with the crash
        assert await h.sender().run_once() == 1
        assert await h.sender().run_once() == 0
        keys = [headers["idempotency-key"] for headers, _ in gateway.calls[1:]]
        # Resent exactly once, with the same key, so the gateway can recognise the repeat.
        assert keys == [row.idempotency_key, row.idempotency_key]
    assert [r.status for r in await h.actions()] == ["sent", "sent"]
    assert await h.outbox_types() == ["message.sent", "message.sent"]


async def test_two_sender_replicas_send_each_message_once(harness: Harness) -> None:
    h = harness
    async with WebhookServer(delay_s=0.2) as gateway:
        await sms_campaign(h, gateway)
        for n in range(4):
            await customer(h, f"c-{n}")
            await at_risk(h, f"c-{n}")
        first, second = await asyncio.gather(h.sender().run_once(), h.sender().run_once())
        assert first + second == 4
        assert first > 0 and second > 0  # both replicas really worked, side by side
        keys = [headers["idempotency-key"] for headers, _ in gateway.calls]
        assert len(keys) == 4 and len(set(keys)) == 4
    assert await h.outbox_types() == ["message.sent"] * 4


async def test_two_scheduler_replicas_fire_each_trigger_once(harness: Harness) -> None:
    h = harness
    coupon = {"type": "coupon", "kind": "percent", "value": 5}
    await h.add_campaign("bd", {"name": "bd", "trigger": {"kind": "birthday"}, "actions": [coupon]})
    h.deps.settings = h.settings.model_copy(update={"scheduler_batch_size": 2})
    for n in range(6):
        await customer(h, f"c-{n}", birthday="1980-03-11")
    h.clock.now = NOON + timedelta(days=1)
    fired = await asyncio.gather(h.scheduler().run_once(), h.scheduler().run_once())
    assert sum(fired) == 6
    assert [r.status for r in await h.actions()] == ["issued"] * 6
    async with h.sessions() as session:
        pending = await session.scalar(select(func.count()).where(tables.scheduled_triggers.c.status == "pending"))
    assert pending == 6  # next year's birthdays, scheduled after firing


async def test_failed_sends_are_retried_with_backoff_then_recorded_as_failed(harness: Harness) -> None:
    h = harness
    h.deps.settings = h.settings.model_copy(update={"send_max_attempts": 3, "send_backoff_s": 60.0})
    async with WebhookServer(fail_first=100) as gateway:
        await sms_campaign(h, gateway)
        await customer(h, "c-1")
        await at_risk(h, "c-1")
        assert await h.sender().run_once() == 1
        [row] = await h.actions("c-1")
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == NOON + timedelta(seconds=60)  # backoff, not a hot loop
        h.clock.now = NOON + timedelta(seconds=60)
        await h.sender().run_once()
        [row] = await h.actions("c-1")
        assert row.next_attempt_at == NOON + timedelta(seconds=180)  # doubled
        h.clock.now = NOON + timedelta(seconds=180)
        await h.sender().run_once()
        assert len(gateway.calls) == 3
    [row] = await h.actions("c-1")
    assert (row.status, row.reason, row.attempts) == ("failed", "send_failed", 3)
    assert "503" in row.last_error
    assert await h.outbox_types() == []


async def test_coupon_redemption_is_tracked_and_attributed_once(harness: Harness) -> None:
    h = harness
    coupon = {"type": "coupon", "kind": "amount", "value": 5, "currency": "USD"}
    await h.add_campaign("cp", {"name": "cp", "trigger": STAGE, "actions": [coupon]})
    await at_risk(h, "c-1")
    code = (await h.actions("c-1"))[0].payload["code"]
    typed = code.lower().replace("-", "- ", 1)  # as a customer might type it
    purchase = {"order_id": "o-1", "amount": 50, "currency": "USD", "coupon_code": typed}
    await h.handle(h.handlers.on_customer_event, event("purchase", "c-1", purchase, NOON + timedelta(hours=1)))
    again = {**purchase, "order_id": "o-2"}
    await h.handle(h.handlers.on_customer_event, event("purchase", "c-1", again, NOON + timedelta(hours=2)))
    async with h.sessions() as session:
        row = (await session.execute(select(tables.coupons).where(tables.coupons.c.code == code))).one()
    assert (row.campaign_id, row.redeemed_order_id) == ("cp", "o-1")


async def test_customer_erased_removes_everything_about_them(harness: Harness) -> None:
    h = harness
    coupon = {"type": "coupon", "kind": "percent", "value": 5}
    await h.add_campaign("cp", {"name": "cp", "trigger": STAGE, "actions": [coupon]})
    await h.add_campaign("bd", {"name": "bd", "trigger": {"kind": "birthday"}, "actions": [coupon]})
    for cid in ("c-1", "c-2"):
        await customer(h, cid, birthday="1990-05-01")
        await at_risk(h, cid)
        purchase = {"order_id": f"o-{cid}", "amount": 20, "currency": "USD"}
        await h.handle(h.handlers.on_customer_event, event("purchase", cid, purchase))
    await h.handle(h.handlers.on_profile_change, event("customer.erased", "c-1", {"customer_id": "c-1"}))
    personal = [
        tables.customer_facts,
        tables.actions,
        tables.coupons,
        tables.assignments,
        tables.purchases,
        tables.loyalty_accounts,
        tables.scheduled_triggers,
    ]
    async with h.sessions() as session:
        for table in personal:
            left = await session.scalar(select(func.count()).where(table.c.customer_id == "c-1"))
            kept = await session.scalar(select(func.count()).where(table.c.customer_id == "c-2"))
            assert (table.name, left) == (table.name, 0)
            assert kept, f"{table.name}: the other customer's data must stay"
