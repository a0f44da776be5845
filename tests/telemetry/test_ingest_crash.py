"""The ingest worker as a process (`refurb ingest`) against a private Mosquitto that queues without limit for the
persistent session: kill -9 five times during a 100k-sample QoS 1 stream (R1) and SIGTERM mid-stream (R2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb.db import make_engine
from refurb.models import metadata
from refurb.telemetry import service
from refurb.telemetry.models import Sample
from tests.factories import make_robot
from tests.telemetry.conftest import UNLIMITED_QUEUE, host_port, private_mosquitto, unique, wait_for

T0 = 1_700_000_000_000


class WorkerProcess:
    """`refurb ingest` in a subprocess, restartable with the same client id (the same broker session)."""

    def __init__(self, tmp: Path, db_url: str, mqtt_url: str, serial: str) -> None:
        self.tmp, self.serial = tmp, serial
        self.env = {**os.environ, "REFURB_DATABASE_URL": db_url, "REFURB_MQTT_URL": mqtt_url,
                    "REFURB_MQTT_CLIENT_ID": unique("ingest"), "REFURB_CHECK_SCHEMA_ON_START": "false",
                    "REFURB_MQTT_SESSION_EXPIRY_S": "600", "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = open(self.tmp / f"worker-{self.runs}.log", "wb")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen([sys.executable, "-m", "refurb.cli", "ingest", "--topic",
                                      f"refurb/v1/robots/{self.serial}/#"], env=self.env, cwd=self.tmp,
                                     stdout=log, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        return (self.tmp / f"worker-{self.runs}.log").read_text(errors="replace")

    def wait_subscribed(self, timeout_s: float = 20) -> None:
        assert wait_for(lambda: "subscribed to" in self.log_text(), timeout_s), self.log_text()

    def wait_connected(self, timeout_s: float = 20) -> None:
        """Wait for CONNACK (a resumed session already holds the subscription; SUBACK queues behind redeliveries)."""
        assert wait_for(lambda: "connected to" in self.log_text(), timeout_s), self.log_text()

    def kill_just_after_a_commit(self, wal: Path) -> None:
        """SIGKILL the worker ~1 ms after its SQLite WAL changes: a batch is (being) committed, its PUBACKs are not
        out yet. A kill at a random moment rarely hits that window, which is what makes redelivery of stored data
        (the duplicates R1 must see counted) likely here rather than lucky."""
        def signature() -> tuple[int, int]:
            try:
                st = wal.stat()
            except FileNotFoundError:
                return (0, 0)
            return (st.st_size, st.st_mtime_ns)

        before = signature()
        deadline = time.monotonic() + 3
        while signature() == before and time.monotonic() < deadline:
            time.sleep(0.0002)
        time.sleep(0.001)
        self.kill(signal.SIGKILL)

    def kill(self, sig: int) -> float:
        """Send a signal and return how long the process took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(30)
        return time.monotonic() - started


class Stream:
    """Publish QoS 1 telemetry from a thread, paced; remember what the broker acknowledged (PUBACK)."""

    def __init__(self, mqtt_url: str, serial: str, n: int, rate_per_s: float) -> None:
        host, port = host_port(mqtt_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("pub"))
        self.client.max_inflight_messages_set(2000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()
        self.serial, self.n, self.rate = serial, n, rate_per_s
        self.infos: list[Any] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        topic = f"refurb/v1/robots/{self.serial}/telemetry"
        started = time.monotonic()
        for i in range(self.n):
            self.infos.append(self.client.publish(
                topic, json.dumps({"ts": T0 + i, "values": {"v": i}, "seq": i}), qos=1))
            if i % 500 == 499:
                ahead = (i + 1) / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
                if i >= 20_000:  # keep paho's 16-bit packet ids from wrapping onto unacknowledged messages
                    self.infos[i - 20_000].wait_for_publish(60)

    def acknowledged(self) -> set[int]:
        for info in self.infos:
            info.wait_for_publish(60)
        return {T0 + i for i, info in enumerate(self.infos) if info.is_published()}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def setup_db(tmp: Path) -> tuple[Engine, str, str]:
    url = f"sqlite:///{tmp / 'ingest.db'}"
    engine = make_engine(url=url)
    metadata.create_all(engine)
    with Session(engine) as s:
        serial = make_robot(s, serial=unique("R")).serial
    return engine, url, serial


def stored_ts(engine: Engine) -> list[int]:
    with Session(engine) as s:
        return [int(t) for t in s.execute(select(Sample.ts_ms)).scalars()]


def stored_count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(Sample)).scalar_one())


def test_r1_kill_9_five_times_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    engine, db_url, serial = setup_db(tmp_path)
    with private_mosquitto(tmp_path / "broker", *UNLIMITED_QUEUE) as url:
        worker = WorkerProcess(tmp_path, db_url, url, serial)
        worker.start()
        worker.wait_subscribed()
        stream = Stream(url, serial, 100_000, rate_per_s=6_000)
        started = time.monotonic()
        stream.thread.start()
        try:
            timeline = []
            for _ in range(5):
                time.sleep(0.2)
                assert stream.thread.is_alive(), "the stream ended before the fifth kill"
                worker.kill_just_after_a_commit(tmp_path / "ingest.db-wal")
                timeline.append((round(time.monotonic() - started, 1), len(stream.infos), stored_count(engine)))
                worker.start()
                worker.wait_connected()
            stream.thread.join(60)
            timeline.append((round(time.monotonic() - started, 1), len(stream.infos), stored_count(engine)))
            acknowledged = stream.acknowledged()
            assert wait_for(lambda: stored_count(engine) >= len(acknowledged), 45), (
                stored_count(engine), len(acknowledged), worker.log_text()[-2000:])
            timeline.append((round(time.monotonic() - started, 1), len(stream.infos), stored_count(engine)))
            print("R1 timeline (s, published, stored):", timeline)
            time.sleep(0.5)  # anything still arriving would be a duplicate row attempt: it must be ignored
            assert worker.kill(signal.SIGTERM) < 10
        finally:
            stream.close()
            if worker.proc and worker.proc.poll() is None:
                worker.proc.kill()
    stamps = stored_ts(engine)
    assert len(acknowledged) == 100_000
    assert acknowledged - set(stamps) == set()  # 0 lost of what the broker acknowledged to the publisher
    assert len(stamps) == len(set(stamps)) == 100_000  # 0 duplicate rows, nothing extra
    with Session(engine) as s:
        stats = service.ingest_stats(s)
    assert stats["duplicates"] > 0  # redeliveries after the kills happened and were recognised
    assert stats["stored"] == 100_000
    assert len(stats["workers"]) == 6


def test_r2_sigterm_commits_and_acks_what_it_holds_then_exits(tmp_path: Path) -> None:
    engine, db_url, serial = setup_db(tmp_path)
    with private_mosquitto(tmp_path / "broker", *UNLIMITED_QUEUE) as url:
        worker = WorkerProcess(tmp_path, db_url, url, serial)
        worker.start()
        worker.wait_subscribed()
        stream = Stream(url, serial, 30_000, rate_per_s=15_000)
        stream.thread.start()
        try:
            assert wait_for(lambda: stored_count(engine) > 3000, 20)
            exit_s = worker.kill(signal.SIGTERM)
            assert worker.proc is not None
            assert worker.proc.returncode == 0, worker.log_text()[-2000:]
            assert exit_s < 10
            first_run_stored = stored_count(engine)
            assert 0 < first_run_stored < 30_000
            worker.start()
            stream.thread.join(60)
            acknowledged = stream.acknowledged()
            assert wait_for(lambda: stored_count(engine) >= len(acknowledged), 45)
            time.sleep(0.5)
            worker.kill(signal.SIGTERM)
        finally:
            stream.close()
            if worker.proc and worker.proc.poll() is None:
                worker.proc.kill()
    assert acknowledged - set(stored_ts(engine)) == set()
    with Session(engine) as s:
        stats = service.ingest_stats(s)
    first, second = stats["workers"]
    # everything the first worker committed was acknowledged before it left: nothing came back as a duplicate
    assert (first["stored"], stats["duplicates"]) == (first_run_stored, 0)
    assert first["stored"] + second["stored"] == 30_000
    assert "stopped" in worker.log_text()
