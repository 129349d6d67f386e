"""Ingest's own settings: the shared `RETAIN_*` settings plus knobs only the front door has."""

from __future__ import annotations

from pydantic import Field

from libs.common.settings import Settings


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
    ingest_group_commit_window_s: float = Field(default=0.001, ge=0, le=0.1)
    # Batches with more events than this are accepted on their own (they are a group already).
    ingest_group_commit_max_batch: int = Field(default=64, ge=0)
    ingest_group_commit_max_inflight: int = Field(default=4, gt=0)
    ingest_relay_batch_size: int = Field(default=1000, gt=0)
    ingest_max_event_bytes: int = Field(default=1024 * 1024, gt=0)
    ingest_max_batch_items: int = Field(default=1000, gt=0, le=10_000)
    ingest_import_chunk_rows: int = Field(default=1000, gt=0)
    # Requests per second for keys without their own `rate_limit_per_s`; None means unlimited.
    ingest_rate_limit_per_s: float | None = None
    # Bucket depth in seconds of rate: how large a burst a key may send after being idle.
    ingest_rate_burst_s: float = Field(default=1.0, gt=0)
