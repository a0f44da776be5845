"""The ingest worker against a real broker (REFURB_TEST_MQTT_URL, else the embedded one): every payload form is
stored, one poison message in 10,000 (R7), each seq three times (R9), shuffled order (R10), clock skew (R11),
NaN/Infinity (R13), unknown robots, and the web app's background wiring with the embedded broker."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime

import numpy as np
from numpy.testing import assert_allclose
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb.telemetry import service
from refurb.telemetry.ingest import start_services
from refurb.telemetry.models import QuarantinedMessage, Sample
from refurb.telemetry.parsing import encode_waveform_binary
from tests.factories import make_robot
from tests.telemetry.conftest import Publisher, ingest_settings, running_worker, telemetry, unique, wait_for


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def robots(engine: Engine, n: int = 1) -> list[tuple[int, str]]:
    with Session(engine) as s:
        made = [make_robot(s, serial=unique("R")) for _ in range(n)]
        return [(r.id, r.serial) for r in made]  # type: ignore[misc]


def sample_count(engine: Engine, robot_id: int | None = None) -> int:
    query = select(func.count()).select_from(Sample)
    if robot_id is not None:
        query = query.where(Sample.robot_id == robot_id)
    with Session(engine) as s:
        return int(s.execute(query).scalar_one())


def quarantine_rows(engine: Engine) -> list[tuple[str, str, datetime]]:
    with Session(engine) as s:
        return [tuple(r) for r in s.execute(select(QuarantinedMessage.reason, QuarantinedMessage.topic,
                                                   QuarantinedMessage.received_at))]  # type: ignore[misc]


def test_every_payload_form_is_stored(ingest_engine: Engine, mqtt_url: str, publisher: Publisher) -> None:
    (a_id, a), (b_id, b) = robots(ingest_engine, 2)
    t = now_ms() - 60_000
    values = np.cos(np.linspace(0, 30, 2048)).astype(np.float32)
    messages = [
        telemetry(a, {"temp_c": 41.5, "mode": "RUN", "seq": 1}),
        telemetry(a, {"ts": t, "values": {"temp_c": 40.0}, "seq": 2}),
        telemetry(a, [{"ts": t + 1, "values": {"temp_c": 40.1}}, {"ts": t + 2, "values": {"temp_c": 40.2}}]),
        ("v1/gateway/telemetry", json.dumps({a: [{"ts": t + 3, "values": {"temp_c": 40.3}}],
                                             b: {"ts": t + 3, "values": {"temp_c": 30.0}}})),
        (f"refurb/v1/robots/{a}/waveform/j3_accel",
         json.dumps({"t0": t, "rate_hz": 1000.0, "unit": "m/s2", "values": [0.5, -0.5, 0.25]})),
        (f"refurb/v1/robots/{a}/waveform/j3_current", encode_waveform_binary(t, 25600.0, "A", values)),
        (f"refurb/v1/robots/{a}/poses", json.dumps({"ts": t, "pose": "P1", "cycle": 1,
                                                    "commanded": {"x": 1, "y": 2, "z": 3},
                                                    "attained": {"x": 1.01, "y": 2, "z": 3}})),
        (f"refurb/v1/robots/{b}/status", "online"),
    ]
    with running_worker(ingest_engine, mqtt_url, [a, b], gateway=True) as worker:
        assert publisher.publish(messages) == len(messages)
        assert wait_for(lambda: worker.stats()["stored"] >= 9 and worker.acked >= len(messages))
    with Session(ingest_engine) as s:
        rows = service.samples(s, a_id, ["temp_c", "mode"], t - 1, now_ms() + 1)
        assert [r["value"] for r in rows[:5]] == [40.0, 40.1, 40.2, 40.3, 41.5] or len(rows) == 6
        assert {r["text"] for r in rows} == {None, "RUN"}
        assert service.samples(s, b_id, ["temp_c"], t, t + 4)[0]["value"] == 30.0
        current = service.waveform_blocks(s, a_id, "j3_current", t, t + 1)
        assert_allclose(current[0].values, values)
        assert service.waveform_blocks(s, a_id, "j3_accel", t, t + 1)[0].values.tolist() == [0.5, -0.5, 0.25]
        assert service.poses(s, a_id, t, t + 1)[0].attained_x_mm == 1.01
        assert service.connectivity(s, b_id)["state"] == "online"
        assert service.connectivity(s, a_id)["last_seen_at"] is not None
        stats = service.ingest_stats(s)
    assert (stats["received"], stats["acked"], stats["quarantined"]) == (8, 8, {})


def test_r7_one_poison_message_in_ten_thousand(ingest_engine: Engine, mqtt_url: str, publisher: Publisher) -> None:
    [(rid, serial)] = robots(ingest_engine)
    t = now_ms() - 20_000_000
    messages = [telemetry(serial, {"ts": t + i * 1000, "values": {"v": i}}) for i in range(10_000)]
    messages[4321] = (messages[4321][0], '{"ts": ' + str(t + 4321 * 1000) + ', "values": {"v": }')
    with running_worker(ingest_engine, mqtt_url, [serial]) as worker:
        assert publisher.publish(messages) == 10_000
        assert wait_for(lambda: worker.acked >= 10_000, 60)
        stats = worker.stats()
    assert sample_count(ingest_engine, rid) == 9_999
    assert [(reason, topic) for reason, topic, _ in quarantine_rows(ingest_engine)] == [
        ("malformed_json", f"refurb/v1/robots/{serial}/telemetry")]
    assert (stats["stored"], stats["quarantined"], stats["duplicates"]) == (9_999, {"malformed_json": 1}, 0)


def test_r9_every_seq_published_three_times(ingest_engine: Engine, mqtt_url: str, publisher: Publisher) -> None:
    [(rid, serial)] = robots(ingest_engine)
    t = now_ms() - 10_000_000
    once = [telemetry(serial, {"ts": t + s, "values": {"v": s}, "seq": s}) for s in range(500)]
    once += [telemetry(serial, {"plain": s, "seq": s}) for s in range(500, 1000)]  # server time: seq is identity
    thrice = [m for m in once for _ in range(3)]
    with running_worker(ingest_engine, mqtt_url, [serial]) as worker:
        assert publisher.publish(thrice) == 3000
        assert wait_for(lambda: worker.acked >= 3000, 60)
        stats = worker.stats()
    assert sample_count(ingest_engine, rid) == 1000
    assert (stats["stored"], stats["duplicates"]) == (1000, 2000)
    with Session(ingest_engine) as s:
        gaps = service.gaps(s, rid)
    assert (gaps["seen"], gaps["missing"]) == (1000, 0)


def test_r10_shuffled_order_is_stored_and_read_in_time_order(ingest_engine: Engine, mqtt_url: str,
                                                             publisher: Publisher) -> None:
    [(rid, serial)] = robots(ingest_engine)
    t = now_ms() - 5_000_000
    stamps = [t + i * 100 for i in range(3000)]
    random.Random(11).shuffle(stamps)
    with running_worker(ingest_engine, mqtt_url, [serial]) as worker:
        assert publisher.publish([telemetry(serial, {"ts": ts, "values": {"a": 1, "b": 2}}) for ts in stamps]) == 3000
        assert wait_for(lambda: worker.acked >= 3000, 60)
    with Session(ingest_engine) as s:
        rows = service.samples(s, rid, ["a", "b"], t, t + 300_000)
    assert len(rows) == 6000
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)


def test_r11_clock_skew_is_quarantined_with_the_receive_time(ingest_engine: Engine, mqtt_url: str,
                                                             publisher: Publisher) -> None:
    [(rid, serial)] = robots(ingest_engine)
    now = now_ms()
    ahead_1h = telemetry(serial, {"ts": now + 3_600_000, "values": {"v": 1}})
    epoch_1970 = telemetry(serial, {"ts": 12_345, "values": {"v": 2}})
    seconds_not_ms = telemetry(serial, {"ts": now // 1000, "values": {"v": 3}})
    slightly_ahead = telemetry(serial, {"ts": now + 60_000, "values": {"v": 4}})  # within the 5 min window
    backfill = telemetry(serial, {"ts": 1_000_000_000_000, "values": {"v": 5}})  # 2001: old but legitimate
    before = datetime.now(UTC)
    with running_worker(ingest_engine, mqtt_url, [serial]) as worker:
        assert publisher.publish([ahead_1h, epoch_1970, seconds_not_ms, slightly_ahead, backfill]) == 5
        assert wait_for(lambda: worker.acked >= 5)
    after = datetime.now(UTC)
    rows = quarantine_rows(ingest_engine)
    assert [reason for reason, _, _ in rows] == ["timestamp_out_of_window"] * 3
    assert all(before <= received <= after for _, _, received in rows)
    with Session(ingest_engine) as s:
        kept = service.samples(s, rid, ["v"], 0, now + 10 * 3_600_000)
    assert [r["value"] for r in kept] == [5.0, 4.0]


def test_r13_nan_and_infinity_are_never_stored(ingest_engine: Engine, mqtt_url: str, publisher: Publisher) -> None:
    [(rid, serial)] = robots(ingest_engine)
    t = now_ms() - 1000
    bad = ['{"ts": %d, "values": {"v": NaN}}', '{"ts": %d, "values": {"v": Infinity}}',
           '{"ts": %d, "values": {"v": -Infinity}}', '{"ts": %d, "values": {"v": 1e999}}',
           '{"ts": %d, "values": {"v": "NaN"}, "x": NaN}']
    topic = f"refurb/v1/robots/{serial}/telemetry"
    with running_worker(ingest_engine, mqtt_url, [serial]) as worker:
        assert publisher.publish([(topic, p % t) for p in bad] + [telemetry(serial, {"ts": t, "values": {"v": 1}})]
                                 ) == 6
        assert wait_for(lambda: worker.acked >= 6)
        stats = worker.stats()
    assert stats["quarantined"] == {"non_finite": 5}
    with Session(ingest_engine) as s:
        assert s.execute(select(Sample.value).where(Sample.robot_id == rid)).scalars().all() == [1.0]


def test_unknown_robot_is_quarantined_then_accepted_once_registered(ingest_engine: Engine, mqtt_url: str,
                                                                    publisher: Publisher) -> None:
    serial = unique("R-NEW")
    with running_worker(ingest_engine, mqtt_url, [serial]) as worker:
        assert publisher.publish([telemetry(serial, {"v": 1})]) == 1
        assert wait_for(lambda: worker.acked >= 1)
        with Session(ingest_engine) as s:
            rid = make_robot(s, serial=serial).id
        time.sleep(service.NEGATIVE_CACHE_TTL_S + 0.1)
        assert publisher.publish([telemetry(serial, {"v": 2})]) == 1
        assert wait_for(lambda: worker.acked >= 2)
    assert [r[0] for r in quarantine_rows(ingest_engine)] == ["unknown_robot"]
    assert sample_count(ingest_engine, rid) == 1


def test_serve_starts_the_embedded_broker_and_the_worker(tmp_path, ingest_engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from tests.telemetry.conftest import free_port

    port = free_port()
    settings = ingest_settings(None, embedded_mqtt_port=port)  # type: ignore[arg-type]
    [(rid, serial)] = robots(ingest_engine)
    services = start_services(settings, ingest_engine)
    try:
        assert [type(svc).__name__ for svc in services] == ["EmbeddedBroker", "IngestWorker"]
        worker = services[1]
        assert worker.wait_subscribed(15)
        pub = Publisher(f"mqtt://127.0.0.1:{port}")
        try:
            t = now_ms() - 1000
            assert pub.publish([telemetry(serial, {"ts": t + i, "values": {"v": i}}) for i in range(200)]) == 200
        finally:
            pub.close()
        assert wait_for(lambda: sample_count(ingest_engine, rid) == 200)
    finally:
        for svc in reversed(services):
            svc.stop()
