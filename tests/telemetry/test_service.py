"""Telemetry storage and queries on SQLite and PostgreSQL: insert-or-ignore identities, quarantine, NaN (R13),
time order (R10), buckets in SQL, gaps, retention, imports, connectivity, counters, credentials."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sqlalchemy import func, select
from sqlmodel import Session

from refurb.errors import NotFoundError, ValidationError
from refurb.telemetry import broker, service
from refurb.telemetry.models import (
    PoseSample,
    QuarantinedMessage,
    Sample,
    SampleAggregate,
    SeenSeq,
    WaveformBlock,
)
from refurb.telemetry.parsing import encode_waveform_binary, parse_import_csv, parse_import_json, parse_message
from tests.factories import make_robot, make_user

NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def msg(topic: str, payload: bytes | str | object, now: int = NOW) -> service.Message:
    raw = payload if isinstance(payload, bytes) else (payload if isinstance(payload, str) else json.dumps(payload))
    data = raw.encode() if isinstance(raw, str) else raw
    return service.Message(topic, data, parse_message(topic, data, received_at_ms=now))


def tel(serial: str) -> str:
    return f"refurb/v1/robots/{serial}/telemetry"


def count(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def test_every_payload_form_is_stored(session: Session) -> None:
    a, b = make_robot(session, serial="R-FORMS-A"), make_robot(session, serial="R-FORMS-B")
    values = np.sin(np.linspace(0, 20, 512)).astype(np.float32)
    messages = [
        msg(tel("R-FORMS-A"), {"temp_c": 41.5, "state": "RUN", "door": True, "seq": 1}),
        msg(tel("R-FORMS-A"), {"ts": NOW - 1000, "values": {"temp_c": 40.0}, "seq": 2}),
        msg(tel("R-FORMS-A"), [{"ts": NOW - 3000, "values": {"temp_c": 39.0}}, {"current_a": 2.5}]),
        msg("v1/gateway/telemetry", {"R-FORMS-A": [{"ts": NOW - 5000, "values": {"temp_c": 38.0}}],
                                     "R-FORMS-B": [{"ts": NOW - 5000, "values": {"temp_c": 30.0}}]}),
        msg("refurb/v1/robots/R-FORMS-A/waveform/j3_accel",
            {"t0": NOW - 10_000, "rate_hz": 1000.0, "unit": "m/s2", "values": [0.0, 0.5, -0.5, 1.0]}),
        msg("refurb/v1/robots/R-FORMS-A/waveform/j3_current",
            encode_waveform_binary(NOW - 20_000, 25600.0, "A", values)),
        msg("refurb/v1/robots/R-FORMS-A/poses",
            [{"ts": NOW - 100, "pose": "P1", "cycle": 1, "commanded": {"x": 100, "y": 0, "z": 50},
              "attained": {"x": 100.02, "y": 0.01, "z": 49.99},
              "orientation": {"commanded": {"a": 0, "b": 90, "c": 0}, "attained": {"a": 0.01, "b": 90, "c": 0}}},
             {"ts": NOW - 50, "pose": "P2", "cycle": 1, "commanded": {"x": 0, "y": 100, "z": 50},
              "attained": {"x": 0.03, "y": 100.0, "z": 50.0}}]),
        msg("refurb/v1/robots/R-FORMS-B/status", b"online"),
    ]
    out = service.store_messages(session, messages)
    session.commit()
    assert out.quarantined == {}
    assert (out.stored_samples, out.stored_waveform_blocks, out.stored_poses, out.status_updates) == (8, 2, 2, 1)
    assert out.stored_waveform_samples == 4 + 512
    rows = service.samples(session, a.id, ["temp_c", "state", "door", "current_a"], NOW - 60_000, NOW + 1)
    assert [(r["key"], r["ts"]) for r in rows] == [
        ("temp_c", NOW - 5000), ("temp_c", NOW - 3000), ("temp_c", NOW - 1000), ("current_a", NOW),
        ("door", NOW), ("state", NOW), ("temp_c", NOW)]
    assert {r["key"]: (r["value"], r["text"]) for r in rows if r["ts"] == NOW} == {
        "temp_c": (41.5, None), "state": (None, "RUN"), "door": (1.0, None), "current_a": (2.5, None)}
    assert service.samples(session, b.id, ["temp_c"], NOW - 60_000, NOW)[0]["value"] == 30.0
    blocks = service.waveform_blocks(session, a.id, "j3_current", NOW - 60_000, NOW)
    assert len(blocks) == 1
    assert blocks[0].values.dtype == np.float32
    assert_allclose(blocks[0].values, values)
    assert (blocks[0].rate_hz, blocks[0].unit) == (25600.0, "A")
    poses = service.poses(session, a.id, NOW - 60_000, NOW)
    assert [(p.pose, p.attained_x_mm) for p in poses] == [("P1", 100.02), ("P2", 0.03)]
    assert poses[0].orientation == {"commanded": {"a": 0.0, "b": 90.0, "c": 0.0},
                                    "attained": {"a": 0.01, "b": 90.0, "c": 0.0}}
    assert service.connectivity(session, b.id)["state"] == "online"
    assert service.connectivity(session, a.id)["last_seen_at"] == datetime(2025, 11, 24, 16, tzinfo=UTC)


def test_redelivered_batch_stores_nothing_and_counts_duplicates(session: Session) -> None:
    make_robot(session, serial="R-DUP")
    batch = [msg(tel("R-DUP"), {"ts": NOW - i, "values": {"v": i}}) for i in range(50)]
    batch.append(msg("refurb/v1/robots/R-DUP/waveform/ch", {"t0": NOW, "rate_hz": 10, "unit": "g", "values": [1]}))
    first = service.store_messages(session, batch)
    second = service.store_messages(session, batch)
    assert (first.stored, first.duplicates) == (51, 0)
    assert (second.stored, second.duplicates) == (0, 51)
    assert count(session, Sample) == 50


def test_plain_form_with_seq_is_identified_by_seq(session: Session) -> None:
    robot = make_robot(session, serial="R-SEQ")
    # the plain form carries no device time: three deliveries at three receive times are still one message
    deliveries = [msg(tel("R-SEQ"), {"temp_c": 40.0, "seq": 7}, now=NOW + k) for k in range(3)]
    assert service.store_messages(session, deliveries[:2]).duplicates == 1
    assert service.store_messages(session, deliveries[2:]).duplicates == 1
    assert count(session, Sample) == 1
    assert service.gaps(session, robot.id)["seen"] == 1
    # without a seq there is no identity beyond the receive time: each delivery is a new sample
    service.store_messages(session, [msg(tel("R-SEQ"), {"temp_c": 41.0}, now=NOW + 10 + k) for k in range(2)])
    assert count(session, Sample) == 3


def test_plain_messages_received_in_one_millisecond_are_all_kept(session: Session) -> None:
    robot = make_robot(session, serial="R-SAME-MS")
    clock = service.ServerClock()
    out = service.store_messages(session, [msg(tel("R-SAME-MS"), {"v": i}) for i in range(5)], clock=clock)
    later = service.store_messages(session, [msg(tel("R-SAME-MS"), {"v": 5})], clock=clock)
    assert (out.stored_samples, out.duplicates, later.stored_samples) == (5, 0, 1)
    rows = service.samples(session, robot.id, ["v"], NOW, NOW + 100)
    assert [(r["ts"], r["value"]) for r in rows] == [(NOW + i, float(i)) for i in range(6)]


def test_invalid_and_unknown_are_quarantined_once(session: Session) -> None:
    make_robot(session, serial="R-Q")
    bad = [msg(tel("R-Q"), '{"temp_c": NaN}'), msg(tel("R-Q"), '{"temp_c": '),
           msg(tel("R-NOBODY"), {"temp_c": 1.0}), msg("refurb/v2/other", b"x"),
           msg(tel("R-Q"), {"ts": NOW, "values": {"x": 1}, "serial": "R-OTHER"})]
    out = service.store_messages(session, bad + bad[:2])
    assert out.quarantined == {"non_finite": 1, "malformed_json": 1, "unknown_robot": 1, "unknown_topic": 1,
                               "identity_mismatch": 1}
    assert out.duplicates == 2
    assert count(session, QuarantinedMessage) == 5
    rows, total = service.list_quarantine(session, reason="unknown_robot")
    assert total == 1
    assert (rows[0].serial, rows[0].payload, rows[0].topic) == ("R-NOBODY", b'{"temp_c": 1.0}', tel("R-NOBODY"))
    assert rows[0].received_at == datetime(2025, 11, 24, 16, tzinfo=UTC)


def test_quarantine_keeps_a_truncated_payload(session: Session) -> None:
    big = b'{"x": "' + b"a" * 300_000 + b'"}'
    service.store_messages(session, [msg(tel("R-BIG"), big)])
    row = session.execute(select(QuarantinedMessage)).scalar_one()
    assert (row.reason, row.payload_size, len(row.payload)) == ("oversize", len(big), service.QUARANTINE_PAYLOAD_BYTES)


def test_robot_cache_sees_new_robots_after_the_negative_ttl(session: Session) -> None:
    cache = service.RobotCache(negative_ttl_s=0.0)
    assert service.store_messages(session, [msg(tel("R-LATE"), {"v": 1})], cache=cache).quarantined == {
        "unknown_robot": 1}
    make_robot(session, serial="R-LATE")
    assert service.store_messages(session, [msg(tel("R-LATE"), {"v": 2})], cache=cache).stored == 1


@pytest.mark.parametrize("payload", ['{"ts": %d, "values": {"v": NaN}}', '{"ts": %d, "values": {"v": Infinity}}',
                                     '{"ts": %d, "values": {"v": -Infinity}}', '{"ts": %d, "values": {"v": 1e400}}',
                                     '[{"ts": %d, "values": {"ok": 1.0}}, {"v": NaN}]'])
def test_r13_non_finite_numbers_are_never_stored(session: Session, payload: str) -> None:
    robot = make_robot(session, serial=f"R-NAN-{abs(hash(payload)) % 10**6}")
    out = service.store_messages(session, [msg(tel(robot.serial), payload % NOW)])
    session.commit()
    assert out.quarantined == {"non_finite": 1}
    assert count(session, Sample) == 0


def test_r13_non_finite_waveforms_and_imports_are_refused(session: Session) -> None:
    robot = make_robot(session, serial="R-NAN-W")
    values = np.array([1.0, np.nan, 2.0], dtype="<f4")
    import struct
    blob = struct.pack("<4sBdqB", b"RFW1", 1, 1000.0, NOW, 1) + b"g" + values.tobytes()
    out = service.store_messages(session, [msg(f"refurb/v1/robots/{robot.serial}/waveform/x", blob)])
    assert out.quarantined == {"non_finite": 1}
    imported = service.import_samples(session, parse_import_json(
        b'[{"serial": "R-NAN-W", "key": "v", "ts": %d, "value": NaN},'
        b' {"serial": "R-NAN-W", "key": "v", "ts": %d, "value": 1.5}]' % (NOW, NOW + 1), received_at_ms=NOW + 2))
    assert (imported["stored"], imported["rejections"][0]["reason"]) == (1, "non_finite")
    session.commit()
    assert count(session, WaveformBlock) == 0
    assert session.execute(select(Sample.value)).scalars().all() == [1.5]


def test_r10_shuffled_samples_come_back_in_time_order(session: Session) -> None:
    robot = make_robot(session, serial="R-ORDER")
    stamps = list(range(NOW - 500_000, NOW, 1000))
    random.Random(3).shuffle(stamps)
    service.store_messages(session, [msg(tel("R-ORDER"), {"ts": ts, "values": {"a": ts % 7, "b": 1}})
                                     for ts in stamps])
    rows = service.samples(session, robot.id, ["a", "b"], NOW - 10**6, NOW)
    assert len(rows) == 1000
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    buckets = service.samples(session, robot.id, ["a"], NOW - 500_000, NOW, interval_ms=100_000, agg="max")
    assert [r["ts"] for r in buckets] == [NOW - 500_000 + k * 100_000 for k in range(5)]
    ts, vals = service.scalar_series(session, robot.id, ["a"], NOW - 10**6, NOW)["a"]
    assert ts.dtype == np.int64
    assert vals.dtype == np.float64
    assert np.all(np.diff(ts) > 0)


def test_buckets_are_aggregated_in_sql(session: Session) -> None:
    robot = make_robot(session, serial="R-AGG")
    values = {NOW + 0: 1.0, NOW + 10: 3.0, NOW + 20: 8.0, NOW + 100: -2.0, NOW + 150: 4.0}
    service.store_messages(session, [msg(tel("R-AGG"), {"ts": ts, "values": {"x": v, "mode": "RUN"}}, now=NOW + 200)
                                     for ts, v in values.items()])
    expect = {"min": [1.0, -2.0], "max": [8.0, 4.0], "avg": [4.0, 1.0], "count": [3, 2]}
    for agg, want in expect.items():
        rows = service.samples(session, robot.id, ["x", "mode"], NOW, NOW + 200, interval_ms=100, agg=agg)
        assert [(r["key"], r["ts"]) for r in rows] == [("x", NOW), ("x", NOW + 100)]
        assert [r["value"] for r in rows] == pytest.approx(want)
    with pytest.raises(ValidationError, match="agg must be one of"):
        service.samples(session, robot.id, ["x"], NOW, NOW + 200, interval_ms=100, agg="median")
    with pytest.raises(ValidationError, match="end"):
        service.samples(session, robot.id, ["x"], NOW, NOW)
    with pytest.raises(ValidationError, match="keys"):
        service.samples(session, robot.id, [], NOW, NOW + 1)


def test_gaps_list_missing_seq_ranges(session: Session) -> None:
    robot = make_robot(session, serial="R-GAP")
    seqs = [s for s in range(1, 21) if s not in (4, 5, 9, 15, 16, 17)]
    service.store_messages(session, [msg(tel("R-GAP"), {"ts": NOW - 100 + s, "values": {"v": s}, "seq": s})
                                     for s in reversed(seqs)])
    report = service.gaps(session, robot.id)
    assert report["gaps"] == [{"from": 4, "to": 5, "missing": 2}, {"from": 9, "to": 9, "missing": 1},
                              {"from": 15, "to": 17, "missing": 3}]
    assert (report["first_seq"], report["last_seq"], report["seen"], report["missing"]) == (1, 20, 14, 6)


def test_retention_keeps_aggregates_and_drops_raw(session: Session) -> None:
    robot = make_robot(session, serial="R-RET")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    old = int((now - timedelta(days=100)).timestamp() * 1000) // 60_000 * 60_000
    recent = int((now - timedelta(days=1)).timestamp() * 1000)
    received = int(now.timestamp() * 1000)
    rows = [{"ts": old + k * 1000, "values": {"t": float(k)}, "seq": k} for k in range(120)]
    rows += [{"ts": old + 5, "values": {"mode": "RUN"}}, {"ts": recent, "values": {"t": 99.0}, "seq": 500}]
    service.store_messages(session, [msg(tel("R-RET"), r, now=received) for r in rows])
    service.store_messages(session, [msg("refurb/v1/robots/R-RET/waveform/acc",
                                         encode_waveform_binary(old, 100.0, "g", [3.0, -3.0, 3.0, -3.0]),
                                         now=received)])
    report = service.apply_retention(session, older_than_days=90, interval_s=60, now=now)
    assert report["deleted"] == {"samples": 121, "waveform_blocks": 1, "seqs": 0, "quarantine": 0}
    assert count(session, Sample) == 1
    kept = service.samples(session, robot.id, ["t"], old, received, interval_ms=60_000, agg="avg")
    assert [(r["ts"], r["value"], r["count"]) for r in kept[:2]] == [(old, 29.5, 60), (old + 60_000, 89.5, 60)]
    assert kept[-1]["value"] == 99.0
    rms = session.execute(select(SampleAggregate).where(SampleAggregate.key == "waveform:acc:rms")).scalar_one()
    assert rms.sum == pytest.approx(3.0)
    # late back-fill into an already aggregated bucket is merged, not overwritten
    service.store_messages(session, [msg(tel("R-RET"), {"ts": old + 500, "values": {"t": -100.0}}, now=received)])
    service.apply_retention(session, older_than_days=90, interval_s=60, now=now)
    merged = service.samples(session, robot.id, ["t"], old, old + 60_000, interval_ms=60_000, agg="min")
    assert (merged[0]["value"], merged[0]["count"]) == (-100.0, 61)
    with pytest.raises(ValidationError):
        service.apply_retention(session, older_than_days=0, interval_s=60)


def test_import_reports_counts_rejections_and_unknown_robots(session: Session) -> None:
    robot = make_robot(session, serial="R-IMP")
    csv_text = ("serial,key,ts,value,seq\n"
                "R-IMP,temp_c,2025-11-24T15:00:00Z,40.5,1\n"
                f"R-IMP,temp_c,{NOW - 1000},41,3\n"
                "R-IMP,temp_c,1000,42,\n"
                "R-GHOST,temp_c,2025-11-24T15:00:00Z,1,\n"
                "R-IMP,mode,2025-11-24T15:00:00Z,AUTO,\n")
    result = service.import_samples(session, parse_import_csv(csv_text, received_at_ms=NOW))
    assert (result["rows"], result["stored"], result["duplicates"], result["rejected"]) == (5, 3, 0, 2)
    assert result["rejections"] == [{"row": 4, "reason": "timestamp_out_of_window",
                                     "detail": result["rejections"][0]["detail"]}]
    assert result["unknown_robots"] == {"R-GHOST": 1}
    again = service.import_samples(session, parse_import_csv(csv_text, received_at_ms=NOW))
    assert (again["stored"], again["duplicates"]) == (0, 3)
    assert service.gaps(session, robot.id)["gaps"] == [{"from": 2, "to": 2, "missing": 1}]
    with pytest.raises(ValidationError, match="malformed_csv"):
        service.import_samples(session, parse_import_csv("a,b\n1,2\n", received_at_ms=NOW))


def test_status_keeps_the_newest_state(session: Session) -> None:
    robot = make_robot(session, serial="R-CONN")
    topic = "refurb/v1/robots/R-CONN/status"
    service.store_messages(session, [msg(topic, {"state": "online", "ts": NOW - 10})])
    service.store_messages(session, [msg(topic, {"state": "offline", "ts": NOW - 20})])  # older, late
    state = service.connectivity(session, robot.id)
    assert state["state"] == "online"
    assert state["state_changed_at"] == datetime(2025, 11, 24, 15, 59, 59, 990000, tzinfo=UTC)
    service.store_messages(session, [msg(topic, '"offline"', now=NOW + 5)])
    assert service.connectivity(session, robot.id)["state"] == "offline"
    assert service.connectivity(session, make_robot(session).id)["state"] == "unknown"


def test_ingest_stats_sum_workers_and_report_live_queue(session: Session) -> None:
    started = datetime.now(UTC)
    service.save_counters(session, worker_id="w1", started_at=started, counters={
        "received": 10, "stored": 8, "duplicates": 1, "quarantined": {"non_finite": 1}, "queue_depth": 5,
        "lag_s": 0.4})
    service.save_counters(session, worker_id="w2", started_at=started, counters={
        "received": 5, "stored": 3, "quarantined": {"non_finite": 1, "malformed_json": 1}, "queue_depth": 7,
        "lag_s": 2.5, "stopped": True})
    service.save_counters(session, worker_id="w1", started_at=started, counters={
        "received": 11, "stored": 9, "duplicates": 1, "quarantined": {"non_finite": 1}, "queue_depth": 2,
        "lag_s": 0.1})
    stats = service.ingest_stats(session)
    assert (stats["received"], stats["stored"], stats["duplicates"]) == (16, 12, 1)
    assert stats["quarantined"] == {"malformed_json": 1, "non_finite": 2}
    assert (stats["queue_depth"], stats["lag_s"]) == (2, 0.1)
    assert [w["live"] for w in stats["workers"]] == [True, False]


def test_customers_see_only_their_own_robots(session: Session) -> None:
    customer, _ = make_user(session, "customer", org="Other Co")
    robot = make_robot(session, serial="R-PRIVATE")
    with pytest.raises(NotFoundError):
        service.samples(session, robot.id, ["x"], NOW, NOW + 1, viewer=customer)
    with pytest.raises(NotFoundError):
        service.gaps(session, robot.id, viewer=customer)


def test_robot_credentials_store_only_a_mosquitto_hash(session: Session) -> None:
    robot = make_robot(session, serial="R-CRED")
    found, password = service.issue_robot_credentials(session, "R-CRED")
    assert found.id == robot.id
    assert robot.mqtt_password_hash is not None
    assert robot.mqtt_password_hash.startswith("$7$")
    assert password not in robot.mqtt_password_hash
    assert broker.verify_mosquitto_password(password, robot.mqtt_password_hash)
    assert service.mqtt_password_entries(session) == [("R-CRED", robot.mqtt_password_hash)]
    assert service.issue_robot_credentials(session, str(robot.id))[0].serial == "R-CRED"
    with pytest.raises(NotFoundError):
        service.issue_robot_credentials(session, "R-NONE")


def test_seen_seq_rows_follow_the_samples(session: Session) -> None:
    make_robot(session, serial="R-SEEN")
    service.store_messages(session, [msg(tel("R-SEEN"), [{"ts": NOW - 2, "values": {"v": 1}, "seq": 1},
                                                         {"ts": NOW - 1, "values": {"v": 2}, "seq": 2}])])
    assert count(session, SeenSeq) == 2
    assert count(session, PoseSample) == 0
