"""Per-robot MQTT credentials: the hashes are Mosquitto's own format, and a private Mosquitto running the generated
password file and ACL lets robot A publish its own telemetry but not robot B's (the message never arrives)."""

from __future__ import annotations

import getpass
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select
from sqlmodel import Session
from typer.testing import CliRunner

from refurb.cli import app
from refurb.config import get_settings
from refurb.db import make_engine
from refurb.models import metadata
from refurb.telemetry import broker
from refurb.telemetry.models import Sample
from tests.factories import make_robot
from tests.telemetry.conftest import host_port, ingest_settings, private_mosquitto, running_worker, wait_for


def test_hashes_match_mosquitto_passwd(tmp_path: Path) -> None:
    passwd = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "robot", "s3cret-pass"], check=True)
    stored = passwd.read_text().strip().split(":", 1)[1]
    _, kind, iterations, salt_b64, _ = stored.split("$")
    import base64

    ours = broker.mosquitto_password_hash("s3cret-pass", salt=base64.b64decode(salt_b64), iterations=int(iterations))
    assert (kind, ours) == ("7", stored)
    assert broker.verify_mosquitto_password("s3cret-pass", stored)
    assert not broker.verify_mosquitto_password("s3cret-pasS", stored)
    assert not broker.verify_mosquitto_password("x", "$6$not-pbkdf2")


def test_acl_text_confines_each_robot() -> None:
    text = broker.acl_text(["R-A", "R-B"], ingest_user="ingest", shared_group="refurb")
    assert "user R-A\ntopic write refurb/v1/robots/R-A/#" in text
    assert "user ingest\ntopic read refurb/v1/robots/#" in text
    assert "topic read $share/refurb/refurb/v1/robots/#" in text
    assert "read" not in text.split("user R-A", 1)[1]
    with pytest.raises(ValueError, match="MQTT topic"):
        broker.acl_text(["R/+"])
    with pytest.raises(ValueError, match="username"):
        broker.password_file_text([("a:b", "$7$...")])


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path / 'acl.db'}"
    monkeypatch.setenv("REFURB_DATABASE_URL", url)
    monkeypatch.setenv("REFURB_MQTT_URL", "mqtt://refurb-ingest:ingest-password@127.0.0.1:1883")
    get_settings.cache_clear()
    engine = make_engine(url=url)
    metadata.create_all(engine)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    run.engine = engine  # type: ignore[attr-defined]
    yield run
    get_settings.cache_clear()
    engine.dispose()


def broker_conf(out: Path) -> list[str]:
    """The generated snippet, for a throw-away broker: no persistence file, and (the password file being 0600)
    the broker keeps the test's user instead of dropping to `mosquitto`."""
    lines = [line for line in (out / "refurb.conf").read_text().splitlines()
             if line and not line.startswith(("#", "persistence"))]
    return [*lines, f"user {getpass.getuser()}"]


def _client(url: str, user: str, password: str, client_id: str) -> tuple[mqtt.Client, Any]:
    host, port = host_port(url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    connected: dict[str, Any] = {}
    c.on_connect = lambda client, userdata, flags, rc, props: connected.setdefault("rc", rc)
    c.connect(host, port)
    c.loop_start()
    wait_for(lambda: "rc" in connected, 10)
    return c, connected.get("rc")


def test_robot_a_cannot_publish_as_robot_b(cli: Any, tmp_path: Path) -> None:
    with Session(cli.engine) as s:
        make_robot(s, serial="R-ACL-A")
        make_robot(s, serial="R-ACL-B")
        make_robot(s, serial="R-NO-CREDS")
    passwords = {}
    for serial in ("R-ACL-A", "R-ACL-B"):
        r = cli("robots", "credentials", serial)
        assert r.exit_code == 0, r.output
        passwords[serial] = re.search(r"password: (\S+)", r.output).group(1)  # type: ignore[union-attr]
    assert cli("robots", "credentials", "R-MISSING").exit_code == 1
    out = tmp_path / "mqtt"
    r = cli("mqtt", "acl", "--out", str(out))
    assert r.exit_code == 0, r.output
    passwd = (out / "passwd").read_text()
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["refurb-ingest", "R-ACL-A", "R-ACL-B"]
    assert all(pw not in passwd for pw in passwords.values())
    assert (out / "passwd").stat().st_mode & 0o077 == 0
    conf_lines = broker_conf(out)

    with private_mosquitto(tmp_path / "broker", *conf_lines) as url:
        host, port = host_port(url)
        # the ingest side: everything under refurb/v1/robots/ that reaches the broker's subscribers
        received: list[tuple[str, bytes]] = []
        got = threading.Event()
        ingest, rc = _client(url, "refurb-ingest", "ingest-password", "acl-ingest")
        assert not rc.is_failure

        def on_message(client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            received.append((msg.topic, msg.payload))
            got.set()

        ingest.on_message = on_message
        ingest.subscribe("refurb/v1/robots/#", qos=1)
        time.sleep(0.3)

        forger, rc = _client(url, "R-ACL-A", passwords["R-ACL-A"], "acl-robot-a-forging")
        assert not rc.is_failure
        forger.publish("refurb/v1/robots/R-ACL-B/telemetry", b'{"temp_c": 99}', qos=1)
        time.sleep(0.5)  # Mosquitto 2 answers "not authorised" (and drops an MQTT 5 client that tries)
        forger.disconnect()
        forger.loop_stop()
        robot_a, rc = _client(url, "R-ACL-A", passwords["R-ACL-A"], "acl-robot-a")
        assert not rc.is_failure
        robot_a.publish("refurb/v1/robots/R-ACL-A/telemetry", b'{"temp_c": 41}', qos=1).wait_for_publish(5)
        assert got.wait(5)
        time.sleep(0.5)  # give a forged message every chance to arrive
        assert received == [("refurb/v1/robots/R-ACL-A/telemetry", b'{"temp_c": 41}')]

        # a robot cannot read other robots' data either (Mosquitto grants the subscription but delivers nothing)
        snooped: list[str] = []
        robot_a.on_message = lambda c, u, msg: snooped.append(msg.topic)
        robot_a.subscribe("refurb/v1/robots/#", qos=1)
        robot_b, rc = _client(url, "R-ACL-B", passwords["R-ACL-B"], "acl-robot-b")
        assert not rc.is_failure
        got.clear()
        robot_b.publish("refurb/v1/robots/R-ACL-B/telemetry", b'{"temp_c": 30}', qos=1).wait_for_publish(5)
        assert got.wait(5)
        time.sleep(0.5)
        assert received[-1] == ("refurb/v1/robots/R-ACL-B/telemetry", b'{"temp_c": 30}')
        assert snooped == []
        for c in (robot_a, robot_b):
            c.disconnect()
            c.loop_stop()

        # wrong password, a robot without credentials, anonymous: refused
        for user, password in (("R-ACL-A", "guess"), ("R-NO-CREDS", "x"), ("", "")):
            c, rc = _client(url, user, password, f"acl-bad-{user or 'anon'}")
            assert rc is not None
            assert rc.is_failure, user
            c.loop_stop()
        ingest.disconnect()
        ingest.loop_stop()


def test_the_worker_ingests_with_its_credentials(cli: Any, tmp_path: Path) -> None:
    with Session(cli.engine) as s:
        robot_id = make_robot(s, serial="R-ACL-W").id
    password = re.search(r"password: (\S+)", cli("robots", "credentials", "R-ACL-W").output).group(1)  # type: ignore
    assert cli("mqtt", "acl", "--out", str(tmp_path / "mqtt")).exit_code == 0
    conf_lines = broker_conf(tmp_path / "mqtt")
    with private_mosquitto(tmp_path / "broker", *conf_lines) as url:
        host, port = host_port(url)
        worker_url = f"mqtt://refurb-ingest:ingest-password@{host}:{port}"
        with running_worker(cli.engine, worker_url, ["R-ACL-W"]) as worker:
            robot, rc = _client(url, "R-ACL-W", password, "acl-robot-w")
            robot.publish("refurb/v1/robots/R-ACL-W/telemetry", b'{"ts": 1700000000000, "values": {"v": 1}}',
                          qos=1).wait_for_publish(5)
            assert wait_for(lambda: worker.acked >= 1)
            robot.disconnect()
            robot.loop_stop()
        wrong = ingest_settings(f"mqtt://refurb-ingest:wrong@{host}:{port}")
        assert wrong.mqtt_url is not None
    with Session(cli.engine) as s:
        assert s.execute(select(func.count()).select_from(Sample).where(Sample.robot_id == robot_id)).scalar_one() == 1
