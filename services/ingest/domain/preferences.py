"""What a customer chose on the preference page, as `consent.changed` events with ids that make a resubmit harmless."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from libs.common.envelope import format_time
from libs.common.unsubscribe import CHANNELS, UnsubscribeClaims

# Channels a customer recognises on the page; "all marketing" also covers the remaining ones (webhook).
PAGE_CHANNELS: tuple[str, ...] = tuple(channel for channel in CHANNELS if channel != "webhook")
Choice = Literal["keep", "stop", "allow"]
ONE_CLICK_BODY = "One-Click"  # RFC 8058: the POST body is `List-Unsubscribe=One-Click`


def choices_from_form(fields: Mapping[str, list[str]], claims: UnsubscribeClaims) -> dict[str, bool]:
    """channel -> granted for every channel the form changes.

    `action=all` withdraws every channel; `action=this` the channel the message came on; `action=save` applies
    each `channel.<name>` select, where `keep` (the default) changes nothing.
    """
    action = (fields.get("action") or [""])[0]
    if action == "all":
        return dict.fromkeys(CHANNELS, False)
    if action == "this":
        return {claims.channel: False}
    if action != "save":
        return {}
    changes: dict[str, bool] = {}
    for channel in PAGE_CHANNELS:
        choice = (fields.get(f"channel.{channel}") or ["keep"])[0]
        if choice in ("stop", "allow"):
            changes[channel] = choice == "allow"
    return changes


def consent_events(
    claims: UnsubscribeClaims, changes: Mapping[str, bool], submission: str, at: datetime
) -> list[dict[str, Any]]:
    """Upstream events as ingest accepts them. `submission` names this one submit of the form (or one-click), so a
    double click or a mail provider's retry repeats the same ids and ingest reports duplicates."""
    events = []
    for channel, granted in sorted(changes.items()):
        digest = hashlib.sha256(f"{claims.customer_id}\x00{submission}\x00{channel}\x00{granted}".encode()).hexdigest()
        events.append(
            {
                "id": f"pref-{digest[:32]}",
                "type": "consent.changed",
                "customer_id": claims.customer_id,
                "time": format_time(at),
                "data": {"channel": channel, "granted": granted},
            }
        )
    return events


def one_click_submission(token: str, at: datetime) -> str:
    """Retries of one one-click POST within the hour count once; a later one is a new withdrawal."""
    return f"one-click:{hashlib.sha256(token.encode()).hexdigest()}:{at:%Y%m%d%H}"
