"""The test-run and alarm routes: who may do what, the 409 of the run state machine, customers' view."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.factories import headers, make_robot, make_user
from tests.telemetry.test_runs_support import equip, ms_to_dt, simulate

QUICK_CHECKS: list[dict[str, Any]] = [{"type": "run_in_hours", "limit": 0.5}, {"type": "motor_temp_max"},
                                      {"type": "current_ratio"}, {"type": "vibration_zone", "joints": ["J1", "J3"]},
                                      {"type": "bearing_defect", "joints": ["J3"], "defects": ["bpfo"]}]


def test_templates_runs_and_the_state_machine_over_http(session: Session, client: TestClient) -> None:
    _, manager = make_user(session, "manager")
    tech_user, tech = make_user(session, "technician")
    customer_user, customer = make_user(session, "customer", org="Acme Robotics")
    _, stranger = make_user(session, "customer", org="Other Corp")
    robot = make_robot(session, model="KR-16", owner_org_id=customer_user.organisation_id)
    equip(session, robot, tech_user)
    config = simulate(session, robot, duration_s=3600, sample_period_s=60, capture_every_s=1800, pose_cycles=0)

    body = {"name": "KR-16 quick", "kind": "quick", "robot_model": "KR-16", "checks": QUICK_CHECKS}
    assert client.post("/api/v1/test-templates", json=body, headers=headers(tech)).status_code == 403
    created = client.post("/api/v1/test-templates", json=body, headers=headers(manager))
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    assert created.json()["checks"][3] == {"type": "vibration_zone", "joints": ["J1", "J3"]}
    assert client.post("/api/v1/test-templates", json=body, headers=headers(manager)).status_code == 409
    bad = client.post("/api/v1/test-templates", json=body | {"name": "x", "checks": [{"type": "pose_accuracy"}]},
                      headers=headers(manager))
    assert bad.status_code == 422
    assert client.get("/api/v1/test-templates", headers=headers(tech)).json()["count"] == 1
    assert client.get("/api/v1/test-templates", headers=headers(customer)).status_code == 403

    start = {"robot_id": robot.id, "template_id": template_id, "window_start": ms_to_dt(config.start_ms).isoformat()}
    assert client.post("/api/v1/test-runs", json=start, headers=headers(customer)).status_code == 403
    started = client.post("/api/v1/test-runs", json=start, headers=headers(tech))
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    assert started.json()["state"] == "running"
    assert started.json()["allowed"] == ["finish", "abort"]
    assert client.post("/api/v1/test-runs", json=start, headers=headers(tech)).status_code == 409

    finish = {"window_end": ms_to_dt(config.end_ms).isoformat()}
    finished = client.post(f"/api/v1/test-runs/{run_id}/finish", json=finish, headers=headers(tech))
    assert finished.status_code == 200, finished.text
    run = finished.json()
    assert run["state"] == "passed", [c["explanation"] for c in run["checks"] if not c["passed"]]
    assert len(run["checks"]) == 1 + 6 + 6 + 2 + 1
    assert run["summary"]["parts"]
    assert all(p["passed"] for p in run["summary"]["parts"])

    again = client.post(f"/api/v1/test-runs/{run_id}/finish", headers=headers(tech))
    assert again.status_code == 409
    assert again.json()["current_state"] == "passed"
    assert again.json()["allowed"] == []
    assert "cannot finish test run" in again.json()["detail"]
    assert client.post(f"/api/v1/test-runs/{run_id}/abort", headers=headers(tech)).status_code == 409

    # customers read their own robots' runs, never others'
    own = client.get(f"/api/v1/test-runs/{run_id}", headers=headers(customer))
    assert own.status_code == 200
    assert len(own.json()["checks"]) == len(run["checks"])
    assert client.get(f"/api/v1/test-runs/{run_id}", headers=headers(stranger)).status_code == 404
    listed = client.get("/api/v1/test-runs", params={"robot_id": robot.id, "state": "passed"},
                        headers=headers(customer)).json()
    assert listed["count"] == 1
    assert listed["data"][0]["checks"] == []
    assert client.get("/api/v1/test-runs", headers=headers(stranger)).json()["count"] == 0

    reasons = client.get("/api/v1/test-runs/failure-reasons", headers=headers(manager))
    assert reasons.status_code == 200
    assert reasons.json() == {"runs_finished": 1, "runs_failed": 0, "reasons": []}
    assert client.get("/api/v1/test-runs/failure-reasons", headers=headers(customer)).status_code == 403

    second = client.post("/api/v1/test-runs", json={"robot_id": robot.id, "template_id": template_id},
                         headers=headers(tech)).json()
    aborted = client.post(f"/api/v1/test-runs/{second['id']}/abort", json={"reason": "bench power cut"},
                          headers=headers(tech))
    assert aborted.status_code == 200
    assert aborted.json()["allowed"] == ["retest"]
    refused = client.post(f"/api/v1/test-runs/{second['id']}/finish", headers=headers(tech))
    assert refused.status_code == 409
    assert refused.json()["allowed"] == ["retest"]


def test_alarm_rules_and_alarms_over_http(session: Session, client: TestClient) -> None:
    from refurb.telemetry import runs_service

    _, manager = make_user(session, "manager")
    _, tech = make_user(session, "technician")
    customer_user, customer = make_user(session, "customer", org="Acme Robotics")
    robot = make_robot(session, owner_org_id=customer_user.organisation_id)
    other = make_robot(session)
    body = {"name": "motor hot", "key": "j*_temp_c", "comparison": ">", "threshold": 80, "n_consecutive": 2,
            "clear_threshold": 75, "severity": "warning"}
    assert client.post("/api/v1/alarm-rules", json=body, headers=headers(tech)).status_code == 403
    created = client.post("/api/v1/alarm-rules", json=body, headers=headers(manager))
    assert created.status_code == 201, created.text
    assert client.get("/api/v1/alarm-rules", headers=headers(tech)).json()["count"] == 1
    assert client.post("/api/v1/alarm-rules", json=body | {"clear_threshold": 90},
                       headers=headers(manager)).status_code == 422

    for target in (robot, other):
        runs_service.evaluate_alarms(session, target.id, [("j2_temp_c", 1_767_225_600_000 + i, 85.0)
                                                          for i in range(3)])
    session.commit()
    everything = client.get("/api/v1/alarms", params={"active": True}, headers=headers(tech)).json()
    assert everything["count"] == 2
    assert everything["data"][0]["active"] is True
    mine = client.get("/api/v1/alarms", headers=headers(customer)).json()
    assert [a["robot_id"] for a in mine["data"]] == [robot.id]
    assert client.get("/api/v1/alarms", params={"active": False}, headers=headers(tech)).json()["count"] == 0
