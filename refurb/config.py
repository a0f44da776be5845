"""Settings read from the environment (prefix ``REFURB_``); nothing is read at import time."""

from __future__ import annotations

from datetime import date, time
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All runtime configuration; every field can be set as ``REFURB_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="REFURB_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'refurb.db'}",
        description="SQLAlchemy URL; default a SQLite file in the working directory.",
    )
    mqtt_url: str | None = Field(default=None, description="mqtt://user:pass@host:port; unset = embedded broker.")
    mqtt_client_id: str = "refurb-ingest"
    mqtt_shared_group: str | None = Field(default=None, description="MQTT v5 shared-subscription group name.")
    embedded_mqtt_port: int = 1884
    ingest_enabled: bool = True
    # telemetry ingest (docs/api.md (Telemetry ingest)): batches, flow control (receive maximum), session, retention
    ingest_batch_size: int = Field(default=2000, gt=0, description="Messages per commit at most.")
    ingest_flush_interval_s: float = Field(default=0.2, gt=0, description="Commit at least this often.")
    ingest_queue_max_messages: int = Field(default=20000, ge=10, le=65535,
                                           description="Unacked messages in hand; sent as MQTT v5 Receive Maximum.")
    ingest_queue_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0,
                                        description="Payload bytes in hand before the worker stops reading.")
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, gt=0, description="Broker keeps the session this long.")
    telemetry_retention_days: float = Field(default=90, gt=0, description="Raw samples older than this are dropped.")
    telemetry_aggregate_interval_s: int = Field(default=60, gt=0, description="Bucket kept by retention.")
    public_base_url: str = "http://127.0.0.1:8000"
    gs1_digital_link_base: str = "https://id.refurb.example"
    max_body_bytes: int = 2 * 1024 * 1024
    max_page_size: int = 500
    login_attempts_per_minute: int = 10
    session_secret: str = Field(default="change-me-in-production", description="Signs page session cookies.")
    check_schema_on_start: bool = True
    # consulting (docs/api.md, Consulting tickets): SLA business calendar, checks, reopening, attachments, automation
    sla_timezone: str = "Asia/Seoul"
    sla_workdays: list[int] = Field(default=[0, 1, 2, 3, 4], description="Weekday numbers, Monday 0 ... Sunday 6.")
    sla_day_start: time = time(9, 0)
    sla_day_end: time = time(18, 0)
    sla_holiday_country: str | None = Field(default="KR", description="`holidays` country code; empty = none.")
    sla_extra_holidays: list[date] = Field(default_factory=list, description="Company closing days (JSON list).")
    sla_extra_workdays: list[date] = Field(default_factory=list, description="Make-up open days (JSON list).")
    sla_warn_fraction: float = Field(default=0.8, gt=0, lt=1)
    sla_escalation_thresholds: list[float] = Field(
        default=[0.8, 1.0, 1.5], description="Fractions of the target: warning, second consultant, manager.")
    sla_check_interval_s: float = Field(default=60, ge=0, description="Periodic SLA check in the server; 0 = off.")
    ticket_reopen_days: float = Field(default=14, ge=0, description="Resolved/closed tickets reopen within this.")
    attachments_dir: Path = Field(default_factory=lambda: Path.cwd() / "refurb-data" / "attachments")
    attachment_max_bytes: int = Field(default=1024 * 1024, gt=0, description="Keep below max_body_bytes.")
    auto_ticket_on_failed_certification: bool = True
    auto_ticket_on_failed_run: bool = False
    auto_ticket_on_critical_alarm: bool = True
    # scoring and metrics (docs/api.md (metrics)): reuse-score weights and thresholds, warranty, reliability, economics
    score_weight_grade: float = Field(default=0.25, ge=0, le=1, description="Weights sum to 1 (refurb.scoring.reuse).")
    score_weight_test: float = Field(default=0.25, ge=0, le=1)
    score_weight_reliability: float = Field(default=0.20, ge=0, le=1)
    score_weight_generation: float = Field(default=0.10, ge=0, le=1)
    score_weight_economics: float = Field(default=0.20, ge=0, le=1)
    score_threshold_reuse: float = Field(default=75.0, gt=0, le=100)
    score_threshold_remanufacture: float = Field(default=50.0, gt=0, le=100)
    score_threshold_recycle: float = Field(default=25.0, gt=0, le=100)
    warranty_years: float = Field(default=2.0, gt=0, le=20, description="Warranty of a refurbished part (years).")
    duty_hours_per_year: float = Field(default=4000.0, gt=0, le=8760, description="2 shifts x 8 h x 250 days.")
    duty_hours_per_year_by_category: dict[str, float] = Field(
        default_factory=dict, description="Per part category overrides of duty_hours_per_year (JSON object).")
    reliability_min_failures: int = Field(default=5, ge=2, description="Fewer failures: no Weibull fit.")
    reliability_fallback_shape: float = Field(
        default=2.0, gt=0, description="Weibull shape assumed when a part type has too few failures to fit.")
    reliability_non_failure_reasons: list[str] = Field(
        default=["obsolete", "surplus", "customer request", "end of contract", "upgrade"],
        description="A scrap/recycle disposition whose reason contains one of these is not a failure.")
    reman_cost_fraction_default: float = Field(default=0.40, ge=0, le=2, description="Of new_price, when unrecorded.")
    reman_cost_fraction_by_category: dict[str, float] = Field(
        default_factory=lambda: {"servo_motor": 0.35, "reducer": 0.30, "encoder": 0.45, "controller_board": 0.40,
                                 "cable_harness": 0.60, "casting": 0.15, "bearing": 0.70, "brake": 0.40,
                                 "drive": 0.40, "teach_pendant": 0.40},
        description="Remanufacturing cost as a fraction of new_price per part category (JSON object).")
    emission_factors_file: Path | None = Field(
        default=None, description="Versioned emission-factor JSON; default the one shipped in refurb/metrics.")
    circularity_center_weighting: str = Field(
        default="mass", pattern="^(mass|value)$", description="Center MCI weights: product mass or new value.")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once, on first use)."""
    return Settings()
