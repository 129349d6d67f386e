"""The preference page's choices enter like any upstream event: logged, deduplicated, published to customer-events.

So campaign (which guards every message by consent) and profile see them at once, and `retain replay` re-publishes
them with everything else: a withdrawal survives a rebuilt broker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.ingest.domain.incoming import validate_python
from services.ingest.handlers.accept import Acceptance, accept_events
from services.ingest.handlers.deps import IngestDeps

SOURCE = "retain/preference-page"


async def record_consent_changes(ctx: IngestDeps, events: Sequence[dict[str, Any]]) -> list[Acceptance]:
    valid = [validate_python(event) for event in events]
    if ctx.committer is not None:
        return await ctx.committer.submit(valid, SOURCE)
    return await accept_events(ctx, valid, SOURCE)
