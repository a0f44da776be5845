"""The part state machine, through the API: legal paths succeed, illegal ones are 409s that say why."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import headers, make_part, make_robot, make_user


@pytest.fixture
def tech(session) -> str:  # type: ignore[no-untyped-def]
    return make_user(session, "technician")[1]


def post(client: TestClient, token: str, part_id: int, **event):  # type: ignore[no-untyped-def]
    return client.post(f"/api/v1/parts/{part_id}/events", json=event, headers=headers(token))


def test_full_remanufacturing_path(client: TestClient, session, tech: str) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    steps = [
        {"type": "received", "station": "intake"},
        {"type": "inspected", "grade": "B", "findings": ["bearing-noise"], "station": "inspection"},
        {"type": "disassembled"},
        {"type": "cleaned"},
        {"type": "repaired", "operations": ["replace bearings"]},
        {"type": "reassembled"},
        {"type": "tested", "passed": True, "results": [{"check": "noise", "passed": True}]},
        {"type": "certified"},
        {"type": "dispositioned", "disposition": "reuse", "reason": "as good as new"},
        {"type": "shipped"},
    ]
    for step in steps:
        r = post(client, tech, part.id, **step)
        assert r.status_code == 201, (step, r.text)
    body = client.get(f"/api/v1/parts/{part.id}", headers=headers(tech)).json()
    assert body["status"] == "shipped"
    assert body["grade"] == "B"
    assert body["reman_count"] == 1
    assert body["disposition"] == "reuse"
    assert body["event_count"] == len(steps)
    assert body["station"] is None


def test_certification_needs_a_passing_test_since_the_last_repair(client: TestClient, session, tech: str
                                                                   ) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    for step in ({"type": "received"}, {"type": "inspected", "grade": "A"}):
        assert post(client, tech, part.id, **step).status_code == 201
    r = post(client, tech, part.id, type="certified")
    assert r.status_code == 409
    body = r.json()
    assert body["current_state"] == "inspected"
    assert "passing test" in body["detail"]
    assert "tested" in body["allowed"]
    assert "certified" not in body["allowed"]
    assert post(client, tech, part.id, type="tested", passed=False).status_code == 201
    assert post(client, tech, part.id, type="certified").status_code == 409
    assert post(client, tech, part.id, type="repaired").status_code == 201
    assert post(client, tech, part.id, type="tested", passed=True).status_code == 201
    assert post(client, tech, part.id, type="certified").status_code == 201


def test_a_test_before_the_latest_repair_does_not_count(client: TestClient, session, tech: str
                                                        ) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    for step in ({"type": "received"}, {"type": "inspected", "grade": "A"}, {"type": "tested", "passed": True},
                 {"type": "repaired"}):
        assert post(client, tech, part.id, **step).status_code == 201
    r = post(client, tech, part.id, type="certified")
    assert r.status_code == 409


def test_scrapped_part_cannot_be_installed_or_changed(client: TestClient, session, tech: str
                                                      ) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    robot = make_robot(session)
    post(client, tech, part.id, type="received")
    assert post(client, tech, part.id, type="dispositioned", disposition="scrap").status_code == 201
    r = post(client, tech, part.id, type="installed", robot_id=robot.id)
    assert r.status_code == 409
    assert r.json()["current_state"] == "scrapped"
    assert r.json()["allowed"] == []
    assert post(client, tech, part.id, type="cleaned").status_code == 409


def test_quarantine_blocks_installation_until_release(client: TestClient, session, tech: str
                                                      ) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    robot = make_robot(session)
    post(client, tech, part.id, type="received")
    assert post(client, tech, part.id, type="quarantined", reason="suspect batch").status_code == 201
    r = post(client, tech, part.id, type="installed", robot_id=robot.id)
    assert r.status_code == 409
    assert "quarantined" in r.json()["detail"]
    assert "released" in r.json()["allowed"]
    assert post(client, tech, part.id, type="quarantined").status_code == 409  # already
    assert post(client, tech, part.id, type="dispositioned", disposition="reuse").status_code == 409
    assert post(client, tech, part.id, type="released").status_code == 201
    assert post(client, tech, part.id, type="installed", robot_id=robot.id).status_code == 201


def test_installed_part_must_be_removed_before_another_install(client: TestClient, session, tech: str
                                                               ) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    r1, r2 = make_robot(session), make_robot(session)
    post(client, tech, part.id, type="received")
    assert post(client, tech, part.id, type="installed", robot_id=r1.id).status_code == 201
    r = post(client, tech, part.id, type="installed", robot_id=r2.id)
    assert r.status_code == 409
    assert "remove it first" in r.json()["detail"]
    assert post(client, tech, part.id, type="dispositioned", disposition="scrap").status_code == 409
    assert post(client, tech, part.id, type="removed").status_code == 201
    assert post(client, tech, part.id, type="removed").status_code == 409
    assert post(client, tech, part.id, type="installed", robot_id=r2.id).status_code == 201


def test_event_fields_are_validated(client: TestClient, session, tech: str) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    post(client, tech, part.id, type="received")
    cases = [
        ({"type": "inspected"}, "grade"),
        ({"type": "inspected", "grade": "Z"}, "grade"),
        ({"type": "tested"}, "passed"),
        ({"type": "dispositioned"}, "disposition"),
        ({"type": "installed"}, "robot_id"),
        ({"type": "teleported"}, "type"),
        ({"type": "installed", "robot_id": 999999}, "robot_id"),
        ({"type": "cleaned", "operating_hours": -1}, "operating_hours"),
    ]
    for body, word in cases:
        r = post(client, tech, part.id, **body)
        assert r.status_code == 422, (body, r.text)
        assert word in r.text
    assert client.get(f"/api/v1/parts/{part.id}", headers=headers(tech)).json()["event_count"] == 1


def test_operating_hours_never_go_down(client: TestClient, session, tech: str) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session, operating_hours=1000)
    r = post(client, tech, part.id, type="received", operating_hours=500)
    assert r.status_code == 422
    assert "cannot go down" in r.json()["detail"]
    assert post(client, tech, part.id, type="received", operating_hours=1500).status_code == 201


def test_only_technicians_managers_admins_record_events(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    for role, status in (("consultant", 403), ("customer", 403), ("technician", 201)):
        _, token = make_user(session, role)
        r = post(client, token, part.id, type="received")
        assert r.status_code == status, role


def test_part_mass_assignment_is_ignored(client: TestClient, session, tech: str) -> None:  # type: ignore[no-untyped-def]
    part = make_part(session)
    r = client.post("/api/v1/parts", json={"serial": "MA-1", "part_type_id": part.part_type_id, "status": "certified",
                                           "grade": "A", "id": 4242, "chain_head": "f" * 64, "reman_count": 9},
                    headers=headers(tech))
    assert r.status_code == 201
    body = r.json()
    assert (body["status"], body["grade"], body["reman_count"], body["chain_head"]) == ("registered", None, 0, None)
    assert body["id"] != 4242
    r = client.patch(f"/api/v1/parts/{part.id}", json={"status": "certified", "quarantined": True, "cycles": 10},
                     headers=headers(tech))
    assert r.status_code == 200
    assert r.json()["status"] == "registered"
    assert r.json()["quarantined"] is False
    assert r.json()["cycles"] == 10


def test_robot_serials_must_be_safe_in_mqtt_topics(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "manager")
    for serial in ("a/b", "R+1", "R#1", "has space"):
        r = client.post("/api/v1/robots", json={"serial": serial, "model": "KR-16"}, headers=headers(token))
        assert r.status_code == 422, serial
    assert client.post("/api/v1/robots", json={"serial": "KR16-7", "model": "KR-16"},
                       headers=headers(token)).status_code == 201
