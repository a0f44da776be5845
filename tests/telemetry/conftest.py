"""Broker and database fixtures for the telemetry tests.

Broker tests use ``REFURB_TEST_MQTT_URL`` when set (CI: the local Mosquitto) and otherwise an embedded amqtt broker;
they are never skipped. Tests that need a broker with particular settings (unlimited offline queue, password file
and ACL) start a private Mosquitto on a free port. Every test uses its own robot serials, topics and client ids, so
parallel runs against one broker do not see each other's messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy.engine import Engine

from refurb.config import Settings
from refurb.telemetry.broker import EmbeddedBroker
from refurb.telemetry.ingest import IngestWorker
from tests.conftest import BACKENDS, database

TEST_MQTT_URL = os.environ.get("REFURB_TEST_MQTT_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def unique(prefix: str = "T") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(predicate: Callable[[], Any], timeout_s: float = 20.0, interval_s: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; return its value (or the last one after the timeout)."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = predicate()
    return value


def host_port(url: str) -> tuple[str, int]:
    rest = url.split("//", 1)[1].rsplit("@", 1)[-1].split("?")[0]
    host, _, port = rest.partition(":")
    return host, int(port or 1883)


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """A running broker: REFURB_TEST_MQTT_URL, else an embedded amqtt broker for the session."""
    if TEST_MQTT_URL:
        yield TEST_MQTT_URL
        return
    broker = EmbeddedBroker(free_port()).start()
    try:
        yield broker.url
    finally:
        broker.stop()


def mosquitto_exe() -> str:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:  # never skipped: CI has Mosquitto, and a machine without it cannot prove these promises
        pytest.fail("these tests need the mosquitto binary (apt-get install mosquitto)")
    return exe


@contextlib.contextmanager
def private_mosquitto(workdir: Path, *extra: str) -> Iterator[str]:
    """Run a private Mosquitto on a free port with extra config lines; yield its URL."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", *extra]) + "\n")
    log = open(workdir / "mosquitto.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([mosquitto_exe(), "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        assert wait_for(lambda: port_open(port) or proc.poll() is not None, 10), "mosquitto did not start"
        assert proc.poll() is None, (workdir / "mosquitto.log").read_text()
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


UNLIMITED_QUEUE = ("allow_anonymous true", "max_queued_messages 0", "max_inflight_messages 0",
                   "max_queued_bytes 0")


@pytest.fixture(params=BACKENDS)
def ingest_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database a worker thread and the test can use at once: a SQLite file, or PostgreSQL when configured."""
    yield from database(request, f"sqlite:///{tmp_path / 'ingest.db'}")


def ingest_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": "sqlite://", "mqtt_url": url, "check_schema_on_start": False,
                              "ingest_flush_interval_s": 0.05, "mqtt_session_expiry_s": 300}
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def running_worker(engine: Engine, url: str, serials: list[str], *, gateway: bool = False,
                   client_id: str | None = None, **settings: Any) -> Iterator[IngestWorker]:
    """Run an in-process worker subscribed only to these robots' topics (and the gateway topic if asked)."""
    topics = [f"refurb/v1/robots/{s}/#" for s in serials] + (["v1/gateway/telemetry"] if gateway else [])
    worker = IngestWorker(ingest_settings(url, **settings), engine, client_id=client_id or unique("ingest"),
                          topics=topics)
    worker.start()
    try:
        assert worker.wait_subscribed(15), "the worker did not subscribe"
        yield worker
    finally:
        worker.stop()


class Publisher:
    """A paho publisher that waits for every PUBACK."""

    def __init__(self, url: str) -> None:
        host, port = host_port(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("pub"))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, messages: list[tuple[str, bytes | str]], *, qos: int = 1, retain: bool = False,
                timeout_s: float = 60) -> int:
        infos = [self.client.publish(topic, payload, qos=qos, retain=retain) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout_s)
        return sum(info.is_published() for info in infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mqtt_url: str) -> Iterator[Publisher]:
    pub = Publisher(mqtt_url)
    yield pub
    pub.close()


def telemetry(serial: str, body: Any) -> tuple[str, str]:
    return f"refurb/v1/robots/{serial}/telemetry", json.dumps(body)
