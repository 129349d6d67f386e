"""What every campaign use case needs: settings, policies and the clock (injectable for tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from libs.common.clock import as_of, wall_clock
from libs.common.outbox import Outbox
from services.campaign.domain.guards import GuardPolicy
from services.campaign.domain.loyalty import DEFAULT_POLICY as DEFAULT_LOYALTY
from services.campaign.domain.loyalty import LoyaltyPolicy
from services.campaign.settings import CampaignSettings

SOURCE = "retain/campaign"


@dataclass
class CampaignDeps:
    settings: CampaignSettings
    outbox: Outbox
    clock: Callable[[], datetime] = wall_clock
    loyalty: LoyaltyPolicy = DEFAULT_LOYALTY
    guard_policy: GuardPolicy = field(init=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.guard_policy = GuardPolicy(
            max_messages=s.frequency_cap_messages,
            frequency_window=timedelta(days=s.frequency_cap_days),
            quiet_start=s.quiet_hours_start,
            quiet_end=s.quiet_hours_end,
            default_timezone=s.default_timezone,
        )

    def now(self, event_time: datetime | None = None) -> datetime:
        """The "as of" clock of docs/architecture.md; tests inject `clock`."""
        return as_of(self.settings.clock_mode, event_time, self.clock)

    @property
    def include_builtin(self) -> bool:
        return self.settings.builtin_campaigns
