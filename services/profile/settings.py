"""Profile's own settings on top of the shared ones (same `RETAIN_` environment prefix)."""

from __future__ import annotations

from libs.common.settings import Settings, service_settings


class ProfileSettings(Settings):
    # Parsed profiles kept per process (~10-20 KB each); 0 disables the cache.
    profile_state_cache_size: int = 20_000
    # A batch costs a fixed number of statements whatever its size (see handlers/apply_events.py), and a customer
    # with several events in one batch is saved and announced once (as a Kafka Streams record cache coalesces
    # updates per key). A caught-up consumer polls small batches anyway; with a backlog, large ones catch up
    # faster: bench_profile measured 3.9k events/s at 2,000, 5.6-5.9k at 10,000 and 6.2k at 16,000. The largest
    # batch still folds in about a second, well inside the consumer session timeout.
    consumer_batch_size: int = 10_000
    # The services the data subject's export asks for their part (`retain run` sets them; defaults: the ports).
    export_ingest_url: str = "http://127.0.0.1:8001"
    export_scoring_url: str = "http://127.0.0.1:8003"
    export_campaign_url: str = "http://127.0.0.1:8004"
    export_feedback_url: str = "http://127.0.0.1:8005"
    export_timeout_s: float = 10.0


def profile_settings(settings: Settings | None) -> ProfileSettings:
    return service_settings(settings, ProfileSettings, "profile")
