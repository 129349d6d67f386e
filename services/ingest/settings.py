"""Ingest's own settings: the shared `RETAIN_*` settings plus knobs only the front door has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field, field_validator

from libs.common.settings import Settings, service_settings
from services.ingest.domain.incoming import DEFAULT_TIME_WINDOW, TimeWindow


class IngestSettings(Settings):
    # A repeated event id within this window is answered "duplicate"; older ids count as new events.
    ingest_dedupe_window_s: float = Field(default=7 * 24 * 3600, gt=0)
    # The event log is also the replay source, so it is kept at least as long as the dedupe window;
    # None keeps it forever (embedded mode: the broker keeps nothing across restarts).
    ingest_event_log_retention_days: float | None = None
    # Longest a request waits for the broker before falling back to the outbox.
    ingest_delivery_timeout_s: float = Field(default=2.0, gt=0)
    # After a failed publish, requests go straight to the outbox for this long before trying again.
    ingest_circuit_open_s: float = Field(default=2.0, gt=0)
    # Group commit: single events and small batches arriving within this window share one insert, one
    # publish and one commit. 0 still groups what queues up while earlier groups are in flight.
    ingest_group_commit_window_s: float = Field(default=0.0, ge=0, le=0.1)
    # Batches with more events than this are accepted on their own (they are a group already).
    ingest_group_commit_max_batch: int = Field(default=64, ge=0)
    # One group in flight per worker: requests arriving meanwhile form the next group, so groups grow with
    # the load and no time is spent waiting for company when there is none. Measured by bench_ingest (c):
    # with no window, no linger and one group in flight p99 was 12-16 ms in most runs, against 26-60 ms
    # with a 1 ms window, 2 ms linger and four groups in flight.
    ingest_group_commit_max_inflight: int = Field(default=1, gt=0)
    # The request waits for the broker's acknowledgement, so every ms the producer lingers is a ms of
    # latency; group commit already hands the producer whole groups.
    kafka_linger_ms: int = Field(default=0, ge=0, le=1000)
    ingest_relay_batch_size: int = Field(default=1000, gt=0)
    ingest_max_event_bytes: int = Field(default=1024 * 1024, gt=0)
    ingest_max_batch_items: int = Field(default=1000, gt=0, le=10_000)
    ingest_import_chunk_rows: int = Field(default=1000, gt=0)
    # Requests per second for keys without their own `rate_limit_per_s`; None means unlimited.
    ingest_rate_limit_per_s: float | None = None
    # Bucket depth in seconds of rate: how large a burst a key may send after being idle.
    ingest_rate_burst_s: float = Field(default=1.0, gt=0)
    # Event times accepted: not before this instant (a zone is required), not further ahead of now than this.
    ingest_earliest_event_time: datetime = DEFAULT_TIME_WINDOW.earliest
    ingest_max_event_time_ahead_s: float = Field(default=DEFAULT_TIME_WINDOW.ahead.total_seconds(), ge=0)

    @field_validator("ingest_earliest_event_time")
    @classmethod
    def _with_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 1970-01-01T00:00:00Z")
        return value.astimezone(UTC)

    @property
    def time_window(self) -> TimeWindow:
        return TimeWindow(self.ingest_earliest_event_time, timedelta(seconds=self.ingest_max_event_time_ahead_s))


def ingest_settings(settings: Settings | None) -> IngestSettings:
    return service_settings(settings, IngestSettings, "ingest")
