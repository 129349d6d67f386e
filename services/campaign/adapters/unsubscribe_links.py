"""The signed unsubscribe link every marketing message carries (ingest serves the page behind it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from libs.common.settings import Settings
from libs.common.unsubscribe import CHANNELS, issue_unsubscribe_token, secret_of, unsubscribe_url

# Both languages the pages speak: the message does not know which one the reader prefers, the page will.
FOOTER = "退订 / Unsubscribe: {url}"


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class UnsubscribeLinks:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = _wall_clock) -> None:
        self.secret = secret_of(settings.unsubscribe_token_secret)
        self.base_url = settings.unsubscribe_base_url
        self.ttl = timedelta(days=settings.unsubscribe_link_ttl_days)
        self.clock = clock

    def url(self, customer_id: str, channel: str, campaign_id: str) -> str:
        # An unknown channel still gets a link that withdraws email, the channel every customer has.
        token = issue_unsubscribe_token(
            self.secret, customer_id, channel if channel in CHANNELS else "email", campaign_id, self.clock() + self.ttl
        )
        return unsubscribe_url(self.base_url, token)


def with_footer(body: str, url: str) -> str:
    return f"{body.rstrip()}\n\n{FOOTER.format(url=url)}" if body.strip() else FOOTER.format(url=url)
