"""The telemetry commands: `refurb ingest` (with its embedded broker), `refurb ingest stats`,
`refurb telemetry import` and `refurb telemetry retention`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from refurb.cli import app
from refurb.config import get_settings
from refurb.db import make_engine
from refurb.models import metadata
from refurb.telemetry import service
from refurb.telemetry.models import Sample
from tests.factories import make_robot
from tests.telemetry.conftest import Publisher, free_port, telemetry, wait_for


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("REFURB_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url=url)
    metadata.create_all(engine)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    run.engine = engine  # type: ignore[attr-defined]
    run.url = url  # type: ignore[attr-defined]
    yield run
    get_settings.cache_clear()
    engine.dispose()


def count(engine: Any) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sample)).scalar_one())


def test_import_files_and_retention(cli: Any, tmp_path: Path) -> None:
    with Session(cli.engine) as s:
        make_robot(s, serial="R-CLI")
    old = datetime.now(UTC) - timedelta(days=200)
    old_ms = int(old.timestamp() * 1000) // 60_000 * 60_000
    rows = [{"serial": "R-CLI", "key": "t", "ts": old_ms + k * 1000, "value": k} for k in range(30)]
    rows.append({"serial": "R-GONE", "key": "t", "ts": old_ms, "value": 1})
    (tmp_path / "old.json").write_text(json.dumps(rows))
    (tmp_path / "new.csv").write_text(f"serial,key,ts,value\nR-CLI,t,{old_ms + 200 * 86_400_000 - 1000},5\n"
                                      "R-CLI,t,1999-01-01T00:00:00Z,1\n")
    r = cli("telemetry", "import", str(tmp_path / "old.json"))
    assert r.exit_code == 0, r.output
    assert "31 rows, 30 stored, 0 duplicates, 1 rejected" in r.output
    assert "unknown robot 'R-GONE'" in r.output
    r = cli("telemetry", "import", str(tmp_path / "new.csv"))
    assert "2 rows, 1 stored, 0 duplicates, 1 rejected" in r.output
    assert "timestamp_out_of_window" in r.output
    (tmp_path / "bad.csv").write_text("nothing,useful\n")
    assert cli("telemetry", "import", str(tmp_path / "bad.csv")).exit_code == 1
    r = cli("telemetry", "retention", "--older-than", "90", "--interval-s", "60")
    assert r.exit_code == 0, r.output
    assert "kept 1 aggregate buckets of 60 s; deleted 30 samples" in r.output
    assert count(cli.engine) == 1
    assert cli("telemetry", "retention", "--older-than", "0").exit_code == 1


def test_ingest_stats_prints_every_counter(cli: Any) -> None:
    with Session(cli.engine) as s:
        service.save_counters(s, worker_id="w1", started_at=datetime.now(UTC), counters={
            "received": 5, "stored": 4, "quarantined": {"non_finite": 1}})
        s.commit()
    r = cli("ingest", "stats")
    assert r.exit_code == 0, r.output
    stats = json.loads(r.output)
    assert (stats["received"], stats["stored"], stats["quarantined"]) == (5, 4, {"non_finite": 1})


def test_refurb_ingest_runs_its_embedded_broker_until_sigterm(cli: Any, tmp_path: Path) -> None:
    with Session(cli.engine) as s:
        robot_id = make_robot(s, serial="R-EMB").id
    port = free_port()
    env = {**os.environ, "REFURB_DATABASE_URL": cli.url, "REFURB_EMBEDDED_MQTT_PORT": str(port),
           "REFURB_CHECK_SCHEMA_ON_START": "false", "REFURB_MQTT_CLIENT_ID": "cli-embedded"}
    env.pop("REFURB_MQTT_URL", None)
    log = tmp_path / "ingest.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "refurb.cli", "ingest"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        assert wait_for(lambda: "subscribed to" in log.read_text(), 20), log.read_text()
        pub = Publisher(f"mqtt://127.0.0.1:{port}")
        try:
            t = int(time.time() * 1000) - 5000
            assert pub.publish([telemetry("R-EMB", {"ts": t + i, "values": {"v": i}}) for i in range(100)]) == 100
        finally:
            pub.close()
        assert wait_for(lambda: count(cli.engine) == 100)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    with Session(cli.engine) as s:
        assert service.ingest_stats(s)["workers"][0]["live"] is False  # it said goodbye
        assert service.connectivity(s, robot_id)["last_seen_at"] is not None
