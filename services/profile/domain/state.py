"""The per-customer profile document (stored as JSON text) and its sub-models.

Design rules that make `apply` correct for late and reordered events:
- counters and money are running sums (Decimal, so addition is exact and order-independent);
- "latest value" fields are last-writer-wins on a `Stamp` (event time, rank, event id), never on arrival order;
- windowed data lives in per-day buckets pruned relative to the newest event time, and bounded lists keep the
  top-N by a total order, both of which give the same result whatever order events arrive in;
- derived fields (averages, interval statistics, open-ticket lists) are recomputed from the above after every change.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STATE_VERSION = 1
# Rolling windows need 30 + 90 = 120 days; the margin lets `as_of` lag the newest event time a little.
BUCKET_RETENTION_DAYS = 150
# "Viewed but not bought" looks back 30 days; keep twice that so a slightly older `as_of` still works.
BROWSING_RETENTION_DAYS = 60
MAX_BROWSING_KEYS = 300
MAX_PURCHASE_DATES = 200
# Only a fast path for redelivery: the service inbox (ce_id) is the authoritative de-duplication.
MAX_APPLIED_EVENT_IDS = 200

CLOSED_TICKET_STATUSES = frozenset({"resolved", "closed"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stamp(_Model):
    """Version of a last-writer-wins value; `rank` breaks ties between event types at the same instant."""

    at: datetime
    event_id: str
    rank: int = 0

    def key(self) -> tuple[datetime, int, str]:
        return (self.at, self.rank, self.event_id)


class Identities(_Model):
    email: str | None = None
    phone: str | None = None
    erp_id: str | None = None
    shop_id: str | None = None


class Attributes(_Model):
    name: str | None = None
    birthday: date | None = None
    region: str | None = None
    industry: str | None = None
    timezone: str | None = None


class CategoryStats(_Model):
    orders: int = 0
    quantity: int = 0
    spend: Decimal = Decimal(0)


class IntervalStats(_Model):
    """Days between consecutive distinct purchase dates (UTC days)."""

    count: int = 0
    mean_days: float | None = None
    median_days: float | None = None
    std_days: float | None = None


class Orders(_Model):
    count: int = 0
    total_spend: Decimal = Decimal(0)
    average_spend: Decimal | None = None
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    # Currency of the newest purchase; sums assume one currency per customer, `currencies` exposes violations.
    currency: str | None = None
    currencies: list[str] = Field(default_factory=list)
    categories: dict[str, CategoryStats] = Field(default_factory=dict)
    # Newest MAX_PURCHASE_DATES distinct purchase days, ascending.
    purchase_dates: list[date] = Field(default_factory=list)
    intervals: IntervalStats = Field(default_factory=IntervalStats)


class Refunds(_Model):
    count: int = 0
    amount: Decimal = Decimal(0)
    last_refund_at: datetime | None = None


class Logins(_Model):
    count: int = 0
    first_login_at: datetime | None = None
    last_login_at: datetime | None = None
    channels: dict[str, int] = Field(default_factory=dict)


class DayBucket(_Model):
    logins: dict[str, int] = Field(default_factory=dict)
    purchases: int = 0
    spend: Decimal = Decimal(0)
    page_views: int = 0


class Browsing(_Model):
    page_views: int = 0
    last_viewed_at: datetime | None = None
    # key -> newest time; pruned to BROWSING_RETENTION_DAYS and MAX_BROWSING_KEYS.
    skus_viewed: dict[str, datetime] = Field(default_factory=dict)
    categories_viewed: dict[str, datetime] = Field(default_factory=dict)
    skus_bought: dict[str, datetime] = Field(default_factory=dict)
    categories_bought: dict[str, datetime] = Field(default_factory=dict)


class Ticket(_Model):
    # Earliest event seen for the ticket: equals the open time unless ticket.opened never arrived.
    opened_at: datetime
    status: str = "open"
    # None until a status-bearing event arrives, so any real status outranks the placeholder.
    status_stamp: Stamp | None = None
    priority: str | None = None
    priority_stamp: Stamp | None = None


class Tickets(_Model):
    items: dict[str, Ticket] = Field(default_factory=dict)
    open_count: int = 0
    closed_count: int = 0
    open_ids: list[str] = Field(default_factory=list)
    last_ticket_id: str | None = None
    last_ticket_at: datetime | None = None
    last_ticket_priority: str | None = None


class Feedback(_Model):
    responses: int = 0
    last_nps: int | None = None
    last_nps_at: datetime | None = None
    last_csat: int | None = None
    last_csat_at: datetime | None = None


class Consent(_Model):
    granted: bool
    stamp: Stamp


class Coupons(_Model):
    redeemed: list[str] = Field(default_factory=list)
    orders_with_coupon: int = 0


class AppliedEvent(_Model):
    at: datetime
    id: str


class ProfileState(_Model):
    version: int = STATE_VERSION
    customer_id: str
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    event_count: int = 0
    identities: Identities = Field(default_factory=Identities)
    attributes: Attributes = Field(default_factory=Attributes)
    orders: Orders = Field(default_factory=Orders)
    refunds: Refunds = Field(default_factory=Refunds)
    logins: Logins = Field(default_factory=Logins)
    browsing: Browsing = Field(default_factory=Browsing)
    tickets: Tickets = Field(default_factory=Tickets)
    feedback: Feedback = Field(default_factory=Feedback)
    consents: dict[str, Consent] = Field(default_factory=dict)
    coupons: Coupons = Field(default_factory=Coupons)
    tags: list[str] = Field(default_factory=list)
    days: dict[date, DayBucket] = Field(default_factory=dict)
    # "section.field" -> version of that last-writer-wins field.
    stamps: dict[str, Stamp] = Field(default_factory=dict)
    # Newest MAX_APPLIED_EVENT_IDS event ids by (time, id), ascending.
    applied_events: list[AppliedEvent] = Field(default_factory=list)
    # Profile ids folded into this one by identity merges.
    merged_from: list[str] = Field(default_factory=list)
    erased_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document: datetimes/dates as ISO strings, Decimals as strings (lossless)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ProfileState:
        return cls.model_validate(raw)


def new_profile(customer_id: str) -> ProfileState:
    return ProfileState(customer_id=customer_id)


# Top-level sections whose own fields are reported individually in change sets ("orders.count").
SECTIONS: tuple[str, ...] = (
    "identities",
    "attributes",
    "orders",
    "refunds",
    "logins",
    "browsing",
    "tickets",
    "feedback",
    "coupons",
)
# Bookkeeping that never makes a change worth announcing.
INTERNAL_FIELDS: frozenset[str] = frozenset({"version", "stamps", "applied_events", "event_count", "days"})
