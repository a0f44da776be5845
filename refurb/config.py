"""Settings read from the environment (prefix ``REFURB_``); nothing is read at import time."""

from __future__ import annotations

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
    public_base_url: str = "http://127.0.0.1:8000"
    gs1_digital_link_base: str = "https://id.refurb.example"
    max_body_bytes: int = 2 * 1024 * 1024
    max_page_size: int = 500
    login_attempts_per_minute: int = 10
    session_secret: str = Field(default="change-me-in-production", description="Signs page session cookies.")
    check_schema_on_start: bool = True


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings (read once, on first use)."""
    return Settings()
