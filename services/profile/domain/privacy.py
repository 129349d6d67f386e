"""Personal data in a profile and how to erase it while keeping the anonymous aggregates."""

from __future__ import annotations

from datetime import datetime

from .derive import normalise
from .event import utc
from .state import ProfileState, Stamp

# Fields that identify a person directly or link to records that do (ERP/shop ids).
PII_FIELDS: tuple[str, ...] = (
    "identities.email",
    "identities.phone",
    "identities.erp_id",
    "identities.shop_id",
    "attributes.name",
    "attributes.birthday",
)
# Indexed columns the service must clear together with the document.
PII_COLUMNS: tuple[str, ...] = ("email", "phone", "erp_id", "shop_id")

# Outranks any real event at the erasure instant so that a late upsert from before cannot restore the data.
_ERASURE_RANK = 1_000
ERASURE_EVENT_ID = "customer.erased"


def erase_pii(state: ProfileState, at: datetime) -> ProfileState:
    """Clear PII as of `at` (the erasure request time), keeping behaviour aggregates.

    Each cleared field gets a last-writer-wins stamp at `at`, so customer.upserted events from before the erasure
    that arrive late are ignored, while a genuinely newer upsert (the customer came back) is accepted.
    """
    moment = utc(at)
    new = state.model_copy(deep=True)
    stamp = Stamp(at=moment, event_id=ERASURE_EVENT_ID, rank=_ERASURE_RANK)
    for name in PII_FIELDS:
        section, field_name = name.split(".")
        setattr(getattr(new, section), field_name, None)
        current = new.stamps.get(name)
        if current is None or stamp.key() > current.key():
            new.stamps[name] = stamp
    new.erased_at = moment if new.erased_at is None else max(new.erased_at, moment)
    normalise(new)
    return new
