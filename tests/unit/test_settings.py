"""How a service's own settings class is built from the shared settings the supervisor or a test passes."""

from __future__ import annotations

import pytest

from libs.common.settings import Settings
from services.profile.settings import ProfileSettings, profile_settings


def test_a_service_default_for_a_shared_setting_applies_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETAIN_CONSUMER_BATCH_SIZE", raising=False)
    shared_default = Settings.model_fields["consumer_batch_size"].default
    profile_default = ProfileSettings.model_fields["consumer_batch_size"].default
    assert profile_default != shared_default

    config = profile_settings(Settings(database_url="postgresql+asyncpg://db/x"))
    assert config.consumer_batch_size == profile_default
    assert config.database_url == "postgresql+asyncpg://db/x"
    assert config.service == "profile"

    assert profile_settings(Settings(consumer_batch_size=7)).consumer_batch_size == 7
    monkeypatch.setenv("RETAIN_CONSUMER_BATCH_SIZE", "33")
    assert profile_settings(Settings()).consumer_batch_size == 33


def test_an_explicit_service_name_is_kept() -> None:
    assert profile_settings(Settings(service="profile-replay")).service == "profile-replay"
