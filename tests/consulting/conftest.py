"""Consulting fixtures: attachments go to a temporary folder; the SLA clock is driven by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from refurb.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url="sqlite://", check_schema_on_start=False, ingest_enabled=False,
                    public_base_url="http://testserver", attachments_dir=tmp_path / "attachments",
                    sla_check_interval_s=0)
