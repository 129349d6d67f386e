"""Profile's own settings on top of the shared ones (same `RETAIN_` environment prefix)."""

from __future__ import annotations

from libs.common.settings import Settings, service_settings


class ProfileSettings(Settings):
    # Parsed profiles kept per process (~10-20 KB each); 0 disables the cache.
    profile_state_cache_size: int = 20_000
    # A batch costs a fixed number of statements whatever its size (see handlers/apply_events.py), so profile
    # reads more per poll than the shared default; bench_profile measures with this value.
    consumer_batch_size: int = 2000


def profile_settings(settings: Settings | None) -> ProfileSettings:
    return service_settings(settings, ProfileSettings, "profile")
