"""Profile's own settings on top of the shared ones (same `RETAIN_` environment prefix)."""

from __future__ import annotations

from libs.common.settings import Settings


class ProfileSettings(Settings):
    # Parsed profiles kept per process (~10-20 KB each); 0 disables the cache.
    profile_state_cache_size: int = 20_000


def profile_settings(settings: Settings | None) -> ProfileSettings:
    if isinstance(settings, ProfileSettings):
        return settings
    if settings is None:
        return ProfileSettings(service="profile")
    # Explicit values win over the environment, so tests passing Settings objects keep their isolation.
    return ProfileSettings(**settings.model_dump())
