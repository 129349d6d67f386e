"""What feedback knows of a customer (tier from scoring, segments from profile), and joining two ids' knowledge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class CustomerRecord:
    tier: str | None = None
    tier_at: datetime | None = None
    segments: tuple[str, ...] = ()
    segments_at: datetime | None = None


def joined(survivor: CustomerRecord, merged: CustomerRecord) -> CustomerRecord:
    """One customer known under two ids: the tier scored last (the survivor's on a tie), the segments of both."""
    scored = [record for record in (survivor, merged) if record.tier is not None]
    tiered = max(scored, key=lambda record: record.tier_at or _NEVER) if scored else CustomerRecord()
    updated = [moment for moment in (survivor.segments_at, merged.segments_at) if moment is not None]
    return CustomerRecord(
        tier=tiered.tier,
        tier_at=tiered.tier_at,
        segments=tuple(sorted({*survivor.segments, *merged.segments})),
        segments_at=max(updated) if updated else None,
    )
