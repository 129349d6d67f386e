"""Channel adapters: email over SMTP, SMS / WeCom / generic webhooks over HTTP.

Every delivery carries the action's idempotency key (email: Message-ID and X-Retain-Idempotency-Key;
HTTP: Idempotency-Key). A crash after the external call but before our commit makes the sender try
again; the receiver (or a human reading headers) can then recognise the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any, Protocol

import aiosmtplib
import httpx

from services.campaign.adapters.unsubscribe_links import UnsubscribeLinks, with_footer
from services.campaign.settings import CampaignSettings


class ChannelNotConfigured(Exception):
    """No address or endpoint for this channel: retrying will not help until configuration changes."""


@dataclass(frozen=True)
class Delivery:
    idempotency_key: str
    kind: str  # message | alert
    channel: str
    to: str | None
    subject: str | None
    body: str
    customer_id: str
    campaign_id: str
    # Marketing messages only: the signed link to the preference page, also in the body's footer.
    unsubscribe_url: str | None = None


class Channel(Protocol):
    async def send(self, delivery: Delivery) -> None: ...


# RFC 5322 allows 998-character lines; the default 78 would fold the 64-hex Message-ID onto a new line.
_SMTP_POLICY = policy.SMTP.clone(max_line_length=998)


class EmailChannel:
    def __init__(self, settings: CampaignSettings) -> None:
        self.settings = settings

    async def send(self, delivery: Delivery) -> None:
        if not delivery.to:
            raise ChannelNotConfigured("no email address")
        message = EmailMessage(policy=_SMTP_POLICY)
        message["From"] = self.settings.smtp_from
        message["To"] = delivery.to
        message["Subject"] = delivery.subject or ""
        message["Message-ID"] = f"<{delivery.idempotency_key}@retain>"
        message["X-Retain-Idempotency-Key"] = delivery.idempotency_key
        if delivery.unsubscribe_url:
            # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs to the link at once.
            message["List-Unsubscribe"] = f"<{delivery.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message.set_content(delivery.body)
        # Flattened here because aiosmtplib would re-flatten with its own (folding) policy.
        await aiosmtplib.send(
            message.as_bytes(policy=_SMTP_POLICY),
            sender=parseaddr(self.settings.smtp_from)[1],
            recipients=[delivery.to],
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            timeout=self.settings.smtp_timeout_s,
            use_tls=self.settings.smtp_use_tls,
            username=self.settings.smtp_username,
            password=self.settings.smtp_password,
        )


class WebhookChannel:
    def __init__(self, url: str | None, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s

    async def send(self, delivery: Delivery) -> None:
        if not self.url:
            raise ChannelNotConfigured(f"no webhook URL for {delivery.kind} on {delivery.channel}")
        body: dict[str, Any] = {
            "id": delivery.idempotency_key,
            "kind": delivery.kind,
            "channel": delivery.channel,
            "to": delivery.to,
            "customer_id": delivery.customer_id,
            "campaign_id": delivery.campaign_id,
            "subject": delivery.subject,
            "text": delivery.body,
        }
        if delivery.unsubscribe_url:
            body["unsubscribe_url"] = delivery.unsubscribe_url
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            response = await client.post(self.url, json=body, headers={"Idempotency-Key": delivery.idempotency_key})
            response.raise_for_status()


class Channels:
    """Routes a delivery to its adapter; tests replace entries to point at local servers."""

    def __init__(self, settings: CampaignSettings) -> None:
        self.unsubscribe_links = UnsubscribeLinks(settings)
        email = EmailChannel(settings)
        timeout = settings.webhook_timeout_s
        self.messages: dict[str, Channel] = {
            "email": email,
            "sms": WebhookChannel(settings.sms_webhook_url, timeout),
            "wecom": WebhookChannel(settings.wecom_webhook_url, timeout),
            "webhook": WebhookChannel(settings.message_webhook_url, timeout),
        }
        self.alerts: dict[str, Channel] = {
            "email": email,
            "webhook": WebhookChannel(settings.alert_webhook_url, timeout),
        }

    async def send(self, delivery: Delivery) -> None:
        table = self.alerts if delivery.kind == "alert" else self.messages
        channel = table.get(delivery.channel)
        if channel is None:
            raise ChannelNotConfigured(f"unknown channel {delivery.channel}")
        if delivery.kind == "message":
            url = self.unsubscribe_links.url(delivery.customer_id, delivery.channel, delivery.campaign_id)
            # Mail shows the link in its footer; gateways (SMS, WeCom, a CRM) get it as a field of their own
            # and render it the way their channel allows (a short link, a menu, a "reply T" rule).
            body = with_footer(delivery.body, url) if delivery.channel == "email" else delivery.body
            delivery = replace(delivery, unsubscribe_url=url, body=body)
        await channel.send(delivery)
