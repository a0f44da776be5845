"""Telemetry over HTTP: import (JSON and CSV), time-ordered queries raw and bucketed, waveforms with spectra, poses,
gaps, connectivity, ingest stats and quarantine; roles and customers' object-level access."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import numpy as np
from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb.telemetry import service
from refurb.telemetry.parsing import encode_waveform_binary, parse_message
from tests.factories import headers, make_robot, make_user

NOW = 1_764_000_000_000


def store(session: Session, topic: str, payload: bytes | str, now: int = NOW) -> service.StoreOutcome:
    data = payload.encode() if isinstance(payload, str) else payload
    out = service.store_messages(session, [service.Message(topic, data, parse_message(topic, data,
                                                                                      received_at_ms=now))])
    session.commit()
    return out


def test_import_json_and_csv_then_query_in_time_order(client: TestClient, session: Session) -> None:
    robot = make_robot(session, serial="R-API-1")
    _, token = make_user(session, "technician")
    rows = [{"serial": "R-API-1", "key": "temp_c", "ts": NOW - 1000 * i, "value": 40 + i} for i in range(50)]
    random.Random(1).shuffle(rows)
    r = client.post("/api/v1/telemetry/import", json=rows, headers=headers(token))
    assert r.status_code == 200, r.text
    assert (r.json()["stored"], r.json()["rejected"]) == (50, 0)
    # the import judges each row: a NaN row is refused with its reason, the good row is stored, nothing else
    nan_rows = json.dumps([{**rows[0], "value": float("nan")}, {**rows[1], "key": "aux_c"}])
    r = client.post("/api/v1/telemetry/import", content=nan_rows, headers={**headers(token),
                                                                           "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert (r.json()["stored"], r.json()["rejected"]) == (1, 1)
    assert "non_finite" in r.text
    csv_text = f"serial,key,ts,value\nR-API-1,temp_c,2025-11-24T15:00:00Z,39.5\nR-API-1,mode,{NOW},AUTO\n"
    r = client.post("/api/v1/telemetry/import", content=csv_text + f"R-API-1,temp_c,{NOW - 1},nan\n",
                    headers={**headers(token), "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert (r.json()["stored"], r.json()["duplicates"], r.json()["rejected"]) == (2, 0, 1)
    assert r.json()["rejections"][0]["row"] == 4
    assert r.json()["rejections"][0]["reason"] == "non_finite"
    r = client.post("/api/v1/telemetry/import", content=csv_text, headers={**headers(token),
                                                                           "Content-Type": "text/csv"})
    assert (r.json()["stored"], r.json()["duplicates"]) == (0, 2)

    r = client.get(f"/api/v1/robots/{robot.id}/telemetry", params={
        "keys": "temp_c,mode", "start": "2025-11-24T15:00:00Z", "end": str(NOW + 1)}, headers=headers(token))
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["ts"] for d in data] == sorted(d["ts"] for d in data)
    assert len(data) == 52
    assert data[0] == {"key": "temp_c", "ts": 1_763_996_400_000, "value": 39.5}
    assert data[-2:] == [{"key": "mode", "ts": NOW, "value": None, "text": "AUTO"},
                         {"key": "temp_c", "ts": NOW, "value": 40.0}]  # same time: by key

    r = client.get(f"/api/v1/robots/{robot.id}/telemetry", params={
        "keys": "temp_c", "start": NOW - 60_000, "end": NOW, "interval": "10s", "agg": "max"}, headers=headers(token))
    assert r.status_code == 200, r.text
    buckets = r.json()["data"]
    assert [b["ts"] for b in buckets] == [NOW - 60_000 + 10_000 * k for k in range(1, 6)]
    assert [(b["value"], b["count"]) for b in buckets] == [(89.0, 9), (80.0, 10), (70.0, 10), (60.0, 10), (50.0, 10)]


def test_query_errors_are_422(client: TestClient, session: Session) -> None:
    robot = make_robot(session)
    _, token = make_user(session, "technician")
    base = f"/api/v1/robots/{robot.id}/telemetry"
    for params in ({"keys": "x", "start": "yesterday"}, {"keys": "x", "start": "2025-01-01T00:00:00"},
                   {"keys": "x", "interval": "fortnight"}, {"keys": "x", "interval": "1m", "agg": "median"},
                   {"keys": "x", "start": NOW, "end": NOW - 1}, {"keys": "", "start": NOW - 1, "end": NOW}):
        assert client.get(base, params=params, headers=headers(token)).status_code == 422, params
    assert client.get(base, headers=headers(token)).status_code == 422  # keys are required
    r = client.post("/api/v1/telemetry/import", content="not json", headers={
        **headers(token), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert "malformed_json" in r.json()["detail"]


def test_waveforms_come_with_their_spectrum(client: TestClient, session: Session) -> None:
    robot = make_robot(session, serial="R-WAVE")
    _, token = make_user(session, "technician")
    rate = 2048.0
    t = np.arange(4096) / rate
    signal = np.sin(2 * np.pi * 160.0 * t).astype(np.float32)
    store(session, "refurb/v1/robots/R-WAVE/waveform/j2_accel", encode_waveform_binary(NOW - 5000, rate, "g", signal))
    r = client.get(f"/api/v1/robots/{robot.id}/waveforms", params={
        "channel": "j2_accel", "start": NOW - 10_000, "end": NOW}, headers=headers(token))
    assert r.status_code == 200, r.text
    [block] = r.json()["blocks"]
    assert (block["t0"], block["n_samples"], block["unit"]) == (NOW - 5000, 4096, "g")
    assert abs(block["rms"] - 1 / np.sqrt(2)) < 1e-3
    spectrum = block["spectrum"]
    assert spectrum["freqs_hz"][int(np.argmax(spectrum["psd"]))] == 160.0
    assert "values" not in block
    r = client.get(f"/api/v1/robots/{robot.id}/waveforms", params={
        "channel": "j2_accel", "start": NOW - 10_000, "end": NOW, "spectrum": False, "values": True},
        headers=headers(token))
    assert len(r.json()["blocks"][0]["values"]) == 4096
    assert "spectrum" not in r.json()["blocks"][0]


def test_poses_gaps_and_connectivity(client: TestClient, session: Session) -> None:
    robot = make_robot(session, serial="R-POSE")
    _, token = make_user(session, "consultant")
    store(session, "refurb/v1/robots/R-POSE/poses", json.dumps(
        [{"ts": NOW - 10 + c, "pose": "P1", "cycle": c, "commanded": {"x": 1, "y": 2, "z": 3},
          "attained": {"x": 1 + c / 100, "y": 2, "z": 3}} for c in range(1, 4)]))
    for seq in (1, 2, 5, 6, 9):
        store(session, "refurb/v1/robots/R-POSE/telemetry", json.dumps({"ts": NOW - 100 + seq, "values": {"v": 1},
                                                                         "seq": seq}))
    store(session, "refurb/v1/robots/R-POSE/status", "offline", now=NOW + 1)
    r = client.get(f"/api/v1/robots/{robot.id}/poses", params={"start": NOW - 1000, "end": NOW},
                   headers=headers(token))
    assert [(p["cycle"], p["attained"]["x"]) for p in r.json()["data"]] == [(1, 1.01), (2, 1.02), (3, 1.03)]
    r = client.get(f"/api/v1/robots/{robot.id}/gaps", headers=headers(token))
    assert r.json()["gaps"] == [{"from": 3, "to": 4, "missing": 2}, {"from": 7, "to": 8, "missing": 2}]
    r = client.get(f"/api/v1/robots/{robot.id}/connectivity", headers=headers(token))
    assert r.json()["state"] == "offline"
    assert r.json()["last_seen_at"] == datetime.fromtimestamp((NOW + 1) / 1000, UTC).isoformat().replace(
        "+00:00", "Z")


def test_stats_for_staff_and_quarantine_for_managers(client: TestClient, session: Session) -> None:
    make_robot(session, serial="R-Q")
    store(session, "refurb/v1/robots/R-Q/telemetry", '{"ts": 1, "values": {"v": 1}}')
    service.save_counters(session, worker_id="w", started_at=datetime.now(UTC), counters={
        "received": 3, "stored": 1, "quarantined": {"timestamp_out_of_window": 1}, "queue_depth": 0, "lag_s": 0.0})
    session.commit()
    _, tech = make_user(session, "technician")
    _, manager = make_user(session, "manager")
    _, customer = make_user(session, "customer")
    stats = client.get("/api/v1/ingest/stats", headers=headers(tech))
    assert stats.status_code == 200
    assert {"received", "stored", "duplicates", "quarantined", "queue_depth", "lag_s"} <= set(stats.json())
    assert stats.json()["quarantined"] == {"timestamp_out_of_window": 1}
    assert client.get("/api/v1/ingest/stats", headers=headers(customer)).status_code == 403
    assert client.get("/api/v1/ingest/quarantine", headers=headers(tech)).status_code == 403
    r = client.get("/api/v1/ingest/quarantine", params={"reason": "timestamp_out_of_window"},
                   headers=headers(manager))
    assert r.status_code == 200
    [row] = r.json()["data"]
    assert (row["serial"], row["payload_preview"], r.json()["count"]) == ("R-Q", '{"ts": 1, "values": {"v": 1}}', 1)


def test_customers_see_only_their_own_robots(client: TestClient, session: Session) -> None:
    customer, token = make_user(session, "customer", org="Acme Robotics")
    own = make_robot(session, serial="R-ACME", owner_org_id=customer.organisation_id)
    other = make_robot(session, serial="R-OTHER")
    for robot in (own, other):
        store(session, f"refurb/v1/robots/{robot.serial}/telemetry", json.dumps({"ts": NOW - 1, "values": {"v": 1}}))
    ok = client.get(f"/api/v1/robots/{own.id}/telemetry", params={"keys": "v", "start": NOW - 10, "end": NOW},
                    headers=headers(token))
    assert (ok.status_code, len(ok.json()["data"])) == (200, 1)
    for path in ("telemetry?keys=v", "waveforms?channel=x", "poses", "gaps", "connectivity"):
        r = client.get(f"/api/v1/robots/{other.id}/{path}", headers=headers(token))
        assert r.status_code == 404, path
    r = client.post("/api/v1/telemetry/import", json=[], headers=headers(token))
    assert r.status_code == 403
    assert client.get(f"/api/v1/robots/{own.id}/gaps").status_code == 401
