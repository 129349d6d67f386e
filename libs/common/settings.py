"""Settings shared by every service, read from `RETAIN_*` environment variables.

Defaults suit the embedded stack that `retain run` starts; production sets every address explicitly.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Scope = Literal["events:write", "customers:read", "customers:write", "campaigns:write", "feedback:write", "admin"]
ALL_SCOPES: tuple[Scope, ...] = (
    "events:write",
    "customers:read",
    "customers:write",
    "campaigns:write",
    "feedback:write",
    "admin",
)


class ApiKey(BaseModel):
    source: str = Field(description="Name of the calling system; becomes ce_source of events it posts.")
    scopes: list[Scope]
    rate_limit_per_s: float | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETAIN_", extra="ignore")

    service: str = "retain"
    database_url: str = "postgresql+asyncpg://postgres@localhost:5432/retain"
    database_pool_size: int = 10
    kafka_bootstrap: str = "localhost:9092"
    topic_prefix: str = ""
    topic_partitions: int = 3
    topic_replication: int = 1
    # How long the producer waits for more records before sending a batch: fewer, larger requests against
    # added latency on every publish.
    kafka_linger_ms: int = Field(default=2, ge=0, le=1000)
    # Idempotent producer: the producer's own retries neither duplicate nor reorder records. True demands it (a
    # broker without it fails the start: production sets this), False never asks, unset asks and falls back with a
    # warning only when the broker answers that it has no idempotent producer (the embedded broker, Tansu).
    kafka_idempotence: bool | None = None
    # Transport security for every Kafka client (producer, consumers, admin). SSL verifies the broker against
    # kafka_ssl_cafile (system CAs when unset); a certificate and key add mutual TLS; SASL_* add a login.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Processes serving one port side by side (uvicorn workers), each with its own pools, producer, consumers
    # and background loops; /metrics merges all of them. On Kubernetes keep 1 and scale with replicas.
    http_workers: int = Field(default=1, ge=1, le=64)
    # Gauges counted from the database (customers per tier, actions per outcome) are recounted on a scrape when
    # older than this, so several scrapers (Prometheus pairs, `retain status`) cost one count.
    metrics_refresh_min_interval_s: float = Field(default=5.0, ge=0)
    # Bootstrap keys (a JSON object): enough to create the first managed key (POST /v1/api-keys).
    api_keys: dict[str, ApiKey] = Field(default_factory=dict)
    # How stale a process's copy of the managed keys may be: a revoked key stops working within this time.
    api_key_cache_ttl_s: float = Field(default=2.0, gt=0, le=60)
    max_body_bytes: int = 5 * 1024 * 1024

    consumer_batch_size: int = 500
    consumer_max_attempts: int = 3
    # Tansu answers a group join after roughly half the session timeout: shorter joins faster,
    # longer tolerates longer pauses before a member is presumed dead.
    consumer_session_timeout_ms: int = 10_000
    consumer_heartbeat_interval_ms: int = 3_000
    consumer_retry_backoff_s: float = 0.2
    outbox_poll_interval_s: float = 0.05
    outbox_batch_size: int = 1000
    # Publishers keep what they published this long, and re-send it to a broker that has lost it (the embedded
    # broker keeps messages in memory only): consumers dedupe on ce_id, so re-sending is safe. 0 keeps nothing.
    redelivery_window_s: float = Field(default=7 * 24 * 3600, ge=0)
    # How often a running service checks that the broker still knows it (a restarted broker has forgotten).
    broker_watch_interval_s: float = Field(default=2.0, gt=0)
    migrate_on_start: bool = True

    # Unsubscribe links: campaign signs one into every marketing message, ingest's preference page verifies it,
    # so both must share the secret (`retain run` generates one under .data/). Unset: a random key per process.
    unsubscribe_token_secret: SecretStr | None = None
    # Where ingest's preference page is reached by customers: the link is `<base>/unsubscribe?token=...`.
    unsubscribe_base_url: str = "http://127.0.0.1:8001"
    # Long-lived on purpose: a customer may unsubscribe from an old message (RFC 8058 and the law expect it).
    unsubscribe_link_ttl_days: int = Field(default=400, gt=0, le=3650)

    # Crypto-shredding (libs/common/personal.py): the master key wrapping every customer's data key, base64 of 32
    # bytes, given inline or in a file (`retain run` generates one under .data/). Unset: personal data is not sealed.
    master_key: SecretStr | None = None
    master_key_file: str | None = None
    # Ingest seals personal fields only while this is on (off: the baseline of the benchmarks).
    personal_data_encryption: bool = True
    # Ingest's key service, from which consumers fetch the (wrapped) data keys of sealed events.
    key_service_url: str = "http://127.0.0.1:8001"
    key_cache_ttl_s: float = Field(default=60.0, ge=0)

    log_level: str = "INFO"
    # "replay" makes "now" the newest event time seen, so replayed history is scored as it was lived.
    clock_mode: Literal["live", "replay"] = "live"


SettingsT = TypeVar("SettingsT", bound="Settings")


def service_settings(settings: Settings | None, cls: type[SettingsT], service: str) -> SettingsT:
    """A service's own settings class: values given explicitly or by the environment (tests, the supervisor)
    win; the service's extra fields, and its own defaults for shared ones, apply to everything else."""
    if isinstance(settings, cls):
        return settings
    if settings is None:
        return cls(service=service)
    values = settings.model_dump(exclude_unset=True)
    if values.get("service", "retain") == "retain":
        values["service"] = service
    return cls(**values)
