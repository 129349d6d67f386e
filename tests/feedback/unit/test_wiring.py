"""Pure parts of the service layer: settings -> SLA table, segment expansion of answers, reopen mapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.common.aliases import JOIN_EVENT_TYPES
from libs.common.outbox import Outbox
from services.feedback.adapters.reports import ResponseRow
from services.feedback.adapters.tables import messaging
from services.feedback.bootstrap import subscriptions
from services.feedback.domain.errors import InvalidValue
from services.feedback.domain.nps import nps_report
from services.feedback.handlers.analysis import _answers
from services.feedback.handlers.deps import FeedbackDeps
from services.feedback.handlers.tickets import _upstream_status
from services.feedback.settings import FeedbackSettings

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def deps(**values: object) -> FeedbackDeps:
    return FeedbackDeps(FeedbackSettings.model_validate(values), Outbox(messaging, ""))


def test_sla_table_setting_overrides_one_cell_and_bad_cells_fail_start_up_naming_them() -> None:
    tuned = deps(sla_table={"vip": {"urgent": {"first_response_minutes": 2}}}, survey_token_secret="s")
    assert tuned.sla_table.target("vip", "urgent").first_response == timedelta(minutes=2)
    assert tuned.sla_table.target("vip", "urgent").resolution == timedelta(hours=4)  # untouched
    assert tuned.token_secret == "s"
    with pytest.raises(InvalidValue) as bad:
        deps(sla_table={"vip": {"urgent": {"first_response_minutes": -1}}})
    assert bad.value.field == "sla.vip.urgent.first_response_minutes"


def test_without_a_secret_each_process_gets_a_random_one() -> None:
    assert deps().token_secret != deps().token_secret


def test_answers_count_once_per_segment_and_unknown_when_ungraded() -> None:
    rows = [
        ResponseRow("c-1", AT, 10, None, "high", ["vip-club", "newsletter"]),
        ResponseRow("c-2", AT, 0, None, None, []),
    ]
    by_segment = nps_report(_answers(rows, "segment"), "segment")
    assert {k: v.total for k, v in by_segment.items()} == {"newsletter": 1, "unknown": 1, "vip-club": 1}
    by_tier = nps_report(_answers(rows, "tier"), "tier")
    assert {k: v.nps for k, v in by_tier.items()} == {"high": 100.0, "unknown": -100.0}


def test_helpdesk_open_on_a_resolved_ticket_means_reopened() -> None:
    assert _upstream_status({"status": "open"}, "resolved")["status"] == "reopened"
    assert _upstream_status({"status": "open"}, "in_progress")["status"] == "open"


def test_profile_changes_bring_the_ids_profile_joins() -> None:
    [profile_changes] = [s for s in subscriptions(deps()) if s.name == "profile-changes"]
    assert profile_changes.event_types is not None and JOIN_EVENT_TYPES <= profile_changes.event_types
