"""Genealogy: a part moves between robots and assemblies; a robot's make-up now and at any past time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from tests.factories import headers, make_part, make_robot, make_user


def ev(client: TestClient, token: str, part_id: int, **body):  # type: ignore[no-untyped-def]
    r = client.post(f"/api/v1/parts/{part_id}/events", json=body, headers=headers(token))
    assert r.status_code == 201, r.text
    return r.json()


def stamp() -> str:
    time.sleep(0.01)
    t = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    return t


def test_part_moves_between_two_robots_and_history_is_kept(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, tech = make_user(session, "technician")
    r1, r2 = make_robot(session, serial="ROBOT-A"), make_robot(session, serial="ROBOT-B")
    motor, encoder = make_part(session, serial="MOTOR-1"), make_part(session, serial="ENC-1")
    for p in (motor, encoder):
        ev(client, tech, p.id, type="received")
    ev(client, tech, motor.id, type="installed", robot_id=r1.id, position="J3")
    ev(client, tech, encoder.id, type="installed", parent_part_id=motor.id)
    t_in_a = stamp()
    ev(client, tech, motor.id, type="removed")
    t_between = stamp()
    ev(client, tech, motor.id, type="installed", robot_id=r2.id, position="J2")
    t_in_b = stamp()

    def parts_at(robot, at=None):  # type: ignore[no-untyped-def]
        params = {"at": at} if at else {}
        r = client.get(f"/api/v1/robots/{robot.id}/parts", params=params, headers=headers(tech))
        assert r.status_code == 200, r.text
        return r.json()["parts"]

    a_then = parts_at(r1, t_in_a)
    assert [p["serial"] for p in a_then] == ["MOTOR-1"]
    assert a_then[0]["position"] == "J3"
    assert [c["serial"] for c in a_then[0]["children"]] == ["ENC-1"]  # recursive
    assert parts_at(r1, t_between) == []
    assert parts_at(r2, t_between) == []
    assert parts_at(r1) == []
    b_now = parts_at(r2)
    assert [p["serial"] for p in b_now] == ["MOTOR-1"]
    assert [c["serial"] for c in b_now[0]["children"]] == ["ENC-1"]
    assert [p["serial"] for p in parts_at(r2, t_in_b)] == ["MOTOR-1"]

    g = client.get(f"/api/v1/parts/{motor.id}/genealogy", headers=headers(tech)).json()
    assert [(h["kind"], h["serial"], h["position"]) for h in g["history"]] == [("robot", "ROBOT-A", "J3"),
                                                                              ("robot", "ROBOT-B", "J2")]
    assert g["history"][0]["removed_at"] is not None
    assert g["history"][1]["removed_at"] is None
    assert g["installed_in"]["robot_id"] == r2.id
    assert [c["serial"] for c in g["children"]] == ["ENC-1"]
    ge = client.get(f"/api/v1/parts/{encoder.id}/genealogy", headers=headers(tech)).json()
    assert ge["ancestors"] == [{"part_id": motor.id, "serial": "MOTOR-1"}]
    assert ge["root_robot_id"] == r2.id


def test_a_part_cannot_be_installed_inside_itself(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, tech = make_user(session, "technician")
    outer, inner = make_part(session), make_part(session)
    ev(client, tech, inner.id, type="received")
    ev(client, tech, outer.id, type="received")
    ev(client, tech, inner.id, type="installed", parent_part_id=outer.id)
    r = client.post(f"/api/v1/parts/{outer.id}/events", json={"type": "installed", "parent_part_id": inner.id},
                    headers=headers(tech))
    assert r.status_code == 422
    assert "inside itself" in r.json()["detail"]


def test_repair_replacing_a_sub_part_removes_it(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, tech = make_user(session, "technician")
    motor, brake = make_part(session), make_part(session)
    ev(client, tech, motor.id, type="received")
    ev(client, tech, brake.id, type="received")
    ev(client, tech, brake.id, type="installed", parent_part_id=motor.id)
    ev(client, tech, motor.id, type="inspected", grade="C")
    ev(client, tech, motor.id, type="repaired", operations=["new brake"], replaced_part_ids=[brake.id])
    b = client.get(f"/api/v1/parts/{brake.id}", headers=headers(tech)).json()
    assert b["parent_part_id"] is None
    events = client.get(f"/api/v1/parts/{brake.id}/events", headers=headers(tech)).json()
    assert events[-1]["type"] == "removed"


def test_time_without_zone_is_refused(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, tech = make_user(session, "technician")
    robot = make_robot(session)
    r = client.get(f"/api/v1/robots/{robot.id}/parts", params={"at": "2026-01-01T00:00:00"}, headers=headers(tech))
    assert r.status_code == 422


def test_customers_see_only_their_own_robots_and_parts(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    acme, acme_tok = make_user(session, "customer", org="Acme")
    _, busan_tok = make_user(session, "customer", org="Busan")
    robot = make_robot(session, owner_org_id=acme.organisation_id)
    part = make_part(session, owner_org_id=acme.organisation_id)
    assert client.get(f"/api/v1/robots/{robot.id}", headers=headers(acme_tok)).status_code == 200
    assert client.get(f"/api/v1/robots/{robot.id}", headers=headers(busan_tok)).status_code == 404
    assert client.get(f"/api/v1/parts/{part.id}", headers=headers(busan_tok)).status_code == 404
    assert client.get(f"/api/v1/parts/{part.id}/events", headers=headers(busan_tok)).status_code == 404
    assert client.get("/api/v1/parts", headers=headers(busan_tok)).json()["count"] == 0
    assert client.get("/api/v1/parts", headers=headers(acme_tok)).json()["count"] == 1
    assert client.get("/api/v1/robots", headers=headers(busan_tok)).json()["count"] == 0
