"""Settings: the one pydantic model that describes the environment rather than a payload."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"changeme", "change-me", "secret", "admin", "password", ""}


class Settings(BaseSettings):
    """Every knob of the service; environment variables are the UPPER-case field names."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000

    database_url: str = "postgresql://postgres@127.0.0.1:55432/tickets"
    redis_url: str = "redis://127.0.0.1:56379/0"
    admin_api_key: SecretStr | None = None
    # Seals webhook connection secrets at rest (api/secrets.py). Unset: connections are refused (503).
    # Changing it makes the stored secrets unreadable: re-issue them after a change.
    secret_key: SecretStr | None = None

    # Connection budget (README "Connection budget"): API processes x pool max + workers + 10.
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_statement_timeout_ms: int = 5_000
    db_worker_statement_timeout_ms: int = 600_000
    db_idle_in_transaction_timeout_ms: int = 30_000
    db_acquire_timeout_s: float = 5.0

    # Limits (spec/api.md, reliability W9)
    max_request_bytes: int = 32 * 1024 * 1024
    max_item_request_bytes: int = 1024 * 1024
    max_webhook_bytes: int = 1024 * 1024
    rate_limit_per_minute: int = 60_000  # per API key; 0 turns it off

    # Pipeline
    embedder: Literal["onnx-int8", "sentence-transformers"] = "onnx-int8"
    model_cache_dir: Path = Path("var/models")
    embed_batch_size: int = 256
    job_timeout_s: int = 600
    cluster_job_timeout_s: int = 3_600
    relay_poll_s: float = 1.0
    relay_max_waiting_jobs: int = 2  # per queue; more pending rows wait for fuller batches
    sweep_after_s: int = 120
    cluster_every_new_items: int = 500
    cluster_every_s: int = 6 * 3600
    cluster_window_days: int | None = None
    cluster_sample_threshold: int = 20_000
    assign_min_similarity: float = 0.5
    # The reconciler: every reconcile_every_s (0 = off), accounts imported with --reconcile are
    # re-read for their last reconcile_hours, which upserts what the webhooks missed.
    reconcile_every_s: int = Field(default=3600, ge=0)
    reconcile_hours: float = Field(default=24.0, gt=0, le=24 * 31)
    # A person's theme takes past and future items whose cosine to its seed reaches this (docs/curation.md).
    curation_seed_threshold: float = 0.5
    curation_backfill_batch: int = 5_000
    failure_ttl_s: int = 7 * 24 * 3600
    # Intent: retrain after this many new corrections (0: only on POST /v1/intent/models); below
    # this confidence a model's intent is "uncertain" (dashboard, feature-request report).
    intent_retrain_every_corrections: int = Field(default=50, ge=0)
    intent_uncertain_below: float = Field(default=0.6, ge=0.0, le=1.0)
    intent_job_timeout_s: int = 1_800
    # "gpl" (default) or "permissive": which shipped model and rows (clustering/models/NOTICE-intent.md)
    intent_model_variant: Literal["gpl", "permissive"] = "gpl"
    intent_model_dir: Path | None = None  # None: the artefacts shipped in clustering/models
    # Reports (api/report_cache.py): one that took at least REPORT_REUSE_MIN_MS to build is served
    # again for up to REPORT_REUSE_COST_RATIO x its build time, at most REPORT_REUSE_MAX_S (0: never).
    report_reuse_min_ms: float = Field(default=100.0, ge=0)
    report_reuse_cost_ratio: float = Field(default=60.0, ge=0)
    report_reuse_max_s: float = Field(default=120.0, ge=0)

    # Alerts (outbound/, workers/alerts.py). Outbound URLs must be https to public addresses;
    # hosts listed here ("host" or "host:port") may use http and private addresses.
    outbound_allowed_hosts: list[str] = []
    public_url: str = "http://127.0.0.1:8000"  # the dashboard's address, for links in messages
    alerts_detect_every_s: int = 30
    # Poisson upper tail below which a window is a spike. metrics.md's report spike uses 0.01; an
    # alert checks every theme daily and weekly at two levels, and 0.01 there means ~40 false
    # incidents per 100 themes in 8 weeks (bench/alerts.py). The bench chose this default.
    alerts_p_value: float = 1e-4
    smtp_host: str | None = None  # unset: e-mail destinations fail their deliveries
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "alerts@localhost"

    @field_validator("admin_api_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("ADMIN_API_KEY is a placeholder; generate a real key")
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("ADMIN_API_KEY must be at least 16 characters")
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("SECRET_KEY is a placeholder; generate a random one")
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("SECRET_KEY must be at least 32 characters")
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"


@lru_cache
def get_settings() -> Settings:
    """Entry points only (create_app, workers, db.migrate); everything else receives Settings."""
    return Settings()
