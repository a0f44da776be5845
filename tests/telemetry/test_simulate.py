"""The simulator: pure generators with the physics they promise, messages the parser accepts, a clock that never runs
ahead of the wall clock, direct insert, the command, and a simulated faulty robot judged after a real broker and the
real ingest worker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from numpy.testing import assert_allclose
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from refurb.config import get_settings
from refurb.db import make_engine
from refurb.models import metadata
from refurb.telemetry import analysis, runs_service
from refurb.telemetry import simulate as sim
from refurb.telemetry.models import PoseSample, QuarantinedMessage, Sample, WaveformBlock
from refurb.telemetry.parsing import ParseLimits, parse_message
from refurb.telemetry.runs import CheckSpec
from tests.factories import make_robot, make_user
from tests.telemetry.conftest import running_worker, unique, wait_for
from tests.telemetry.test_runs_support import equip, make_template, run_template

P = sim.DEFAULT_PROFILE
RATE_HZ = 10_240.0


# --- pure generators ---------------------------------------------------------------------------------------------


def test_parse_fault() -> None:
    assert sim.parse_fault("outer_race:J3") == sim.Fault(sim.FaultKind.OUTER_RACE, 3)
    assert sim.parse_fault("overheat:j2") == sim.Fault(sim.FaultKind.OVERHEAT, 2)
    assert sim.parse_fault("backlash") == sim.Fault(sim.FaultKind.BACKLASH, None)
    assert str(sim.parse_fault("outer_race:3")) == "outer_race:J3"
    for bad, message in [("overheat", "needs a joint"), ("melted:J1", "unknown kind"), ("outer_race:J7", "J1..J6"),
                         ("outer_race J3", "expected KIND")]:
        with pytest.raises(ValueError, match=message):
            sim.parse_fault(bad)


def test_temperature_heats_first_order_to_steady_state() -> None:
    t_s = np.arange(0.0, 10 * 3600, 60.0)
    healthy = sim.temperature_c(P, 2, t_s, rng=np.random.default_rng(0))
    hot = sim.temperature_c(P, 2, t_s, faults=(sim.Fault(sim.FaultKind.OVERHEAT, 2),), rng=np.random.default_rng(0))
    rise = analysis.temperature_rise(t_s, healthy)
    assert_allclose(rise.rise_k, P.joints[1].temp_rise_k, atol=0.5)
    assert rise.steady_state
    assert_allclose(healthy[t_s == P.joints[1].tau_s].mean() - P.ambient_c, P.joints[1].temp_rise_k * (1 - 1 / np.e),
                    atol=0.6)  # 63 % of the rise after one time constant
    assert_allclose(analysis.temperature_rise(t_s, hot).rise_k, P.joints[1].temp_rise_k * sim.OVERHEAT_FACTOR,
                    atol=0.8)


def test_current_rms_follows_the_profile() -> None:
    t_s = np.arange(0.0, 3600.0, 1.0)
    for joint in (1, 6):
        current = sim.current_a(P, joint, t_s, rng=np.random.default_rng(joint))
        assert_allclose(analysis.rms(current), P.joints[joint - 1].current_rms_a, rtol=0.02)
        assert current.min() >= 0


def test_vibration_healthy_and_outer_race() -> None:
    fault = (sim.Fault(sim.FaultKind.OUTER_RACE, 3),)
    for joint in (1, 3, 6):
        spec = P.joints[joint - 1]
        bpfo_order, bpfi_order = spec.bearing.orders()
        for faults in ((), fault):
            x = sim.vibration_m_s2(P, joint, int(4 * RATE_HZ), RATE_HZ, faults=faults,
                                   rng=np.random.default_rng(joint))
            velocity = analysis.velocity_rms_mm_s(x, RATE_HZ)
            assert analysis.vibration_zone(velocity, "iso10816-1_class_i") == "A"  # the impacts ring at 3 kHz
            band = (RATE_HZ / 10, RATE_HZ * 0.4)
            bpfo = analysis.detect_bearing_defect(x, RATE_HZ, bpfo_order * spec.shaft_hz, band_hz=band)
            bpfi = analysis.detect_bearing_defect(x, RATE_HZ, bpfi_order * spec.shaft_hz, band_hz=band)
            assert bpfo.detected == (joint == 3 and faults == fault), (joint, faults, bpfo.ratio_db)
            assert not bpfi.detected
    assert_allclose(sim.BEARING_6205.orders()[0], 9 / 2 * (1 - 7.94 / 39.04))


def test_poses_backlash_hurts_repeatability_not_accuracy() -> None:
    def report(faults: tuple[sim.Fault, ...]) -> analysis.PoseReport:
        records = sim.pose_records(P, cycles=30, first_ts_ms=0, spacing_s=4, faults=faults, seed=3)
        return analysis.pose_stats_by_pose([r.pose for r in records], [r.commanded_xyz_mm for r in records],
                                           [r.attained_xyz_mm for r in records])

    healthy, loose = report(()), report((sim.Fault(sim.FaultKind.BACKLASH),))
    assert [p for p, _ in healthy.by_pose] == ["P1", "P2", "P3", "P4", "P5"]
    assert all(s.n == 30 for _, s in healthy.by_pose)
    assert 0.02 < healthy.rp_mm < 0.04  # RP ~ 3.6 sigma for isotropic noise
    assert loose.rp_mm > 2.5 * healthy.rp_mm
    assert abs(loose.ap_mm - healthy.ap_mm) < 0.05


def test_messages_are_accepted_by_the_parser_in_time_order() -> None:
    config = sim.SimulationConfig(start_ms=1_767_225_600_000, duration_s=120, sample_period_s=5, capture_every_s=60,
                                  capture_s=1.0, block_s=0.5, vib_rate_hz=5120, pose_cycles=2, pose_spacing_s=2,
                                  faults=(sim.Fault(sim.FaultKind.OUTER_RACE, 2),))
    stream = list(sim.messages(config, "SIM-1"))
    assert [m.due_ms for m in stream] == sorted(m.due_ms for m in stream)
    kinds = {k: sum(m.kind == k for m in stream) for k in ("telemetry", "waveform", "poses")}
    assert kinds == {"telemetry": 25, "waveform": 2 * 6 * 2, "poses": 10}
    samples = blocks = 0
    for message in stream:
        # received when due: the parser's 5-minute future window is never needed
        result = parse_message(message.topic, message.payload, received_at_ms=message.due_ms,
                               limits=ParseLimits(max_future_skew_ms=1))
        assert result.ok, (message.topic, result.rejection)
        assert all(s.ts_ms <= message.due_ms for s in result.scalars)
        samples += len(result.scalars)
        blocks += len(result.waveforms)
    assert (samples, blocks) == (25 * 18, 24)
    seqs = [json.loads(m.payload)["seq"] for m in stream if m.kind == "telemetry"]
    assert seqs == list(range(1, 26))


@pytest.mark.parametrize("speedup", [1.0, 7.5, 600.0])
def test_simulated_clock_never_runs_ahead_of_the_wall_clock(speedup: float) -> None:
    now_ms, duration_s = 1_767_225_600_000, 16 * 3600.0
    start_ms = sim.simulated_start_ms(now_ms, duration_s, speedup)
    wall_s = np.linspace(0, duration_s / speedup, 1001)
    simulated_ms = start_ms + speedup * wall_s * 1000
    assert np.all(simulated_ms <= now_ms + wall_s * 1000 + 1)
    assert_allclose(simulated_ms[-1], now_ms + wall_s[-1] * 1000, atol=1)  # the clocks meet at the end
    assert sim.simulated_start_ms(now_ms, duration_s, 0) == now_ms - duration_s * 1000
    with pytest.raises(ValueError, match="speedup"):
        sim.simulated_start_ms(now_ms, duration_s, 0.5)


def test_small_parsers(tmp_path: Path) -> None:
    assert sim.parse_duration_s("16h") == 57_600
    assert sim.parse_duration_s("90m") == 5400
    assert sim.parse_duration_s("45") == 45
    assert sim.parse_duration_s("2d") == 172_800
    with pytest.raises(ValueError, match="duration"):
        sim.parse_duration_s("soon")
    assert sim.parse_mqtt_url("mqtt://u%40x:p@broker:1884") == sim.MqttTarget("broker", 1884, False, "u@x", "p")
    assert sim.parse_mqtt_url("mqtts://broker").port == 8883
    creds = tmp_path / "creds"
    creds.write_text(json.dumps({"username": "R-1", "password": "s3cret"}))
    assert sim.read_credentials(creds, "R-1") == ("R-1", "s3cret")
    creds.write_text(json.dumps({"R-1": {"password": "a"}, "R-2": "b"}))
    assert sim.read_credentials(creds, "R-2") == ("R-2", "b")
    creds.write_text("# issued by refurb\nR-1:abc:def\nR-2:xyz\n")
    assert sim.read_credentials(creds, "R-1") == ("R-1", "abc:def")
    with pytest.raises(ValueError, match="no 'username:password' line"):
        sim.read_credentials(creds, "R-3")


# --- direct insert -----------------------------------------------------------------------------------------------


def test_insert_simulated_run_is_idempotent(session: Session) -> None:
    robot = make_robot(session)
    config = sim.SimulationConfig(start_ms=int(time.time() * 1000) - 3_600_000, duration_s=600, sample_period_s=10,
                                  capture_every_s=300, pose_cycles=2)
    counts = sim.insert_simulated_run(session, robot.id, config)
    session.commit()
    assert (counts.samples, counts.waveform_blocks, counts.poses) == (61 * 18, 2 * 6 * 4, 10)
    again = sim.insert_simulated_run(session, robot.id, config)
    assert (again.samples, again.waveform_blocks, again.poses) == (0, 0, 0)
    stored = session.exec(select(func.count()).select_from(Sample).where(Sample.robot_id == robot.id)).one()
    assert stored == 61 * 18


def test_simulate_command_direct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'sim.db'}"
    engine = make_engine(url=url)
    metadata.create_all(engine)
    with Session(engine) as session:
        make_robot(session, serial="SIM-CLI")
    monkeypatch.setenv("REFURB_DATABASE_URL", url)
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("simulate")(sim.simulate_command)
    app.command("noop")(lambda: None)  # keep `simulate` a sub-command, as in `refurb simulate`
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["simulate", "SIM-CLI", "--direct", "--duration", "10m", "--sample-period-s",
                                     "10", "--capture-every-s", "300", "--pose-cycles", "2",
                                     "--fault", "outer_race:J3"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "outer_race:J3" in result.output
        assert "wrote 1098 samples, 48 waveform blocks, 10 poses" in result.output
        bad = runner.invoke(app, ["simulate", "SIM-CLI", "--fault", "overheat"])
        assert bad.exit_code == 2
        assert "needs a joint" in bad.output
        missing = runner.invoke(app, ["simulate", "NOPE", "--direct", "--duration", "1m"])
        assert missing.exit_code == 1
        assert "not registered" in missing.output
    finally:
        get_settings.cache_clear()
        engine.dispose()


# --- through a real broker and the ingest worker -----------------------------------------------------------------


def _count(engine: Engine, model: type, robot_id: int) -> int:
    with Session(engine) as s:
        return int(s.exec(select(func.count()).select_from(model).where(model.robot_id == robot_id)).one())


@pytest.mark.broker
def test_simulated_faulty_robot_through_broker_and_ingest_fails_the_right_check(
        ingest_engine: Engine, mqtt_url: str, tmp_path: Path) -> None:
    serial = unique("SIM")
    with Session(ingest_engine, expire_on_commit=False) as session:
        tech = make_user(session, "technician")[0]
        robot = make_robot(session, serial=serial, model="KR-16")
        equip(session, robot, tech)
        checks = [CheckSpec(type="run_in_hours", limit=0.2, max_gap_s=30), CheckSpec(type="motor_temp_max"),
                  CheckSpec(type="current_ratio"), CheckSpec(type="vibration_zone"), CheckSpec(type="bearing_defect"),
                  CheckSpec(type="pose_repeatability", limit=0.05)]
        template = make_template(session, kind="quick", checks=checks)
    duration_s, speedup = 15 * 60.0, 450.0
    now_ms = int(time.time() * 1000)
    config = sim.SimulationConfig(start_ms=sim.simulated_start_ms(now_ms, duration_s, speedup), duration_s=duration_s,
                                  faults=(sim.parse_fault("outer_race:J3"),), sample_period_s=5,
                                  capture_every_s=300, pose_cycles=3, pose_spacing_s=2, seed=7)
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({serial: {"username": serial, "password": "not-checked-by-this-broker"}}))
    user, password = sim.read_credentials(credentials, serial)
    target = sim.parse_mqtt_url(mqtt_url)
    target = sim.MqttTarget(target.host, target.port, target.tls, target.username or user,
                            target.password or password)
    with running_worker(ingest_engine, mqtt_url, [serial]):
        started = time.monotonic()
        stats = sim.publish(config, serial, target, speedup=speedup)
        assert time.monotonic() - started >= 0.9 * duration_s / speedup  # paced by the speed-up
        expected_samples = (int(duration_s // 5) + 1) * 18
        assert stats.samples == expected_samples
        assert stats.waveform_blocks == 3 * 6 * 4
        assert stats.poses == 15
        assert wait_for(lambda: _count(ingest_engine, Sample, robot.id) == expected_samples
                        and _count(ingest_engine, WaveformBlock, robot.id) == 72
                        and _count(ingest_engine, PoseSample, robot.id) == 15, 60)
    with Session(ingest_engine, expire_on_commit=False) as session:
        assert session.exec(select(func.count()).select_from(QuarantinedMessage)
                            .where(QuarantinedMessage.topic.startswith(f"refurb/v1/robots/{serial}/"))).one() == 0
        robot = session.merge(robot)
        run = run_template(session, robot, template, config, tech)
        failed = sorted(r.name for r in runs_service.run_checks(session, run) if not r.passed)
        assert failed == ["j3_bearing_bpfo_db"]


@pytest.mark.broker
def test_simulate_command_publishes_with_credentials(mqtt_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.telemetry.conftest import host_port

    serial = unique("SIMCLI")
    received: list[str] = []
    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("sub"))
    subscriber.on_message = lambda _c, _u, msg: received.append(msg.topic)
    subscriber.connect(*host_port(mqtt_url))
    subscriber.subscribe(f"refurb/v1/robots/{serial}/#", qos=1)
    subscriber.loop_start()
    credentials = tmp_path / "robots.txt"
    credentials.write_text(f"{serial}:pw-from-refurb-robots-credentials\n")
    monkeypatch.setenv("REFURB_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("simulate")(sim.simulate_command)
    app.command("noop")(lambda: None)
    try:
        time.sleep(0.3)
        result = CliRunner().invoke(app, ["simulate", serial, "--mqtt-url", mqtt_url, "--speedup", "0",
                                          "--duration", "30s", "--capture-every-s", "20", "--pose-cycles", "2",
                                          "--credentials-file", str(credentials)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "published 65 messages: 558 samples, 24 waveform blocks, 10 poses" in result.output
        # 31 telemetry + 24 blocks + 10 poses, and the retained online/offline status
        assert wait_for(lambda: len(received) >= 67, 20)
        assert received.count(f"refurb/v1/robots/{serial}/telemetry") == 31
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
        get_settings.cache_clear()
