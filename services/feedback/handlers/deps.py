"""What every feedback use case needs: settings, outbox, SLA table, token secret and an injectable clock."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from libs.common.clock import as_of, wall_clock
from libs.common.outbox import Outbox
from libs.common.personal import PersonalData
from services.feedback.domain.sla import SlaTable
from services.feedback.settings import FeedbackSettings

log = logging.getLogger(__name__)

SOURCE = "retain/feedback"


@dataclass
class FeedbackDeps:
    settings: FeedbackSettings
    outbox: Outbox
    clock: Callable[[], datetime] = wall_clock
    # Keys for the texts kept sealed at rest (handlers/sealing.py): the runtime's, set at start; None: kept clear.
    personal: PersonalData | None = None
    sla_table: SlaTable = field(init=False)
    token_secret: str = field(init=False)

    def __post_init__(self) -> None:
        # A bad SLA table fails start-up (InvalidValue names the cell) rather than the first ticket.
        self.sla_table = SlaTable.from_dict(self.settings.sla_table)
        configured = self.settings.survey_token_secret
        if configured is not None and configured.get_secret_value():
            self.token_secret = configured.get_secret_value()
        else:
            log.warning("RETAIN_SURVEY_TOKEN_SECRET is not set: survey links are valid for this process only")
            self.token_secret = secrets.token_urlsafe(32)

    def now(self, event_time: datetime | None = None) -> datetime:
        """The "as of" clock of docs/architecture.md; tests inject `clock` to drive SLA deadlines."""
        return as_of(self.settings.clock_mode, event_time, self.clock)
