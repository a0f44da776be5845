"""Fleet reliability: the censored Weibull of a part type from its parts' events (the shared reference vector),
the failure rule, the refusal with too few failures, and MTBF / MTTR of a refurbished robot."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from refurb.config import Settings
from refurb.parts.models import Installation
from tests.factories import headers, make_part, make_part_type, make_robot, make_user
from tests.metrics.helpers import close_with_verdicts, record

# standards.md section 4: lecture data used by SciPy's tests; True = still running (right-censored)
LECTURE = [(3, False), (5, False), (6, True), (8, False), (10, True), (11, True), (15, False), (20, True),
           (22, False), (23, False), (27, True), (29, False), (32, False), (35, False), (40, False), (26, False),
           (28, False), (33, True), (21, False), (24, True)]


def test_weibull_of_a_part_type_matches_the_reference_vector(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    pt = make_part_type(session, design_life_h=30)
    for hours, running in LECTURE:
        part = make_part(session, part_type_id=pt.id, operating_hours=0 if not running else hours)
        if not running:
            record(session, part, tech, "tested", passed=False, operating_hours=hours)
    r = client.get(f"/api/v1/part-types/{pt.id}/reliability", headers=headers(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["n_failures"], body["n_censored"], body["n_zero_hour_failures"]) == (13, 7, 0)
    assert body["shape"] == pytest.approx(2.149, abs=5e-4)
    assert body["scale_h"] == pytest.approx(28.99, abs=0.01)  # published to 2 decimals (28.9964)
    assert body["b10_h"] == pytest.approx(10.1775, rel=1e-3)
    assert body["mttf_h"] == pytest.approx(25.6794, rel=1e-3)
    low, high = body["shape_ci"]
    assert low < body["shape"] < high
    low, high = body["scale_ci"]
    assert low < body["scale_h"] < high
    assert body["confidence"] == 0.95
    assert [f["hours"] for f in body["failures"]][:3] == [3, 5, 8]
    assert all(f["reason"] == "failed test" for f in body["failures"])
    assert "right-censored" in body["failure_rule"]


def test_too_few_failures_is_a_clear_422(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    pt = make_part_type(session)
    for hours in (100.0, 200.0, 300.0):
        part = make_part(session, part_type_id=pt.id, operating_hours=hours)
        if hours < 300:
            record(session, part, tech, "tested", passed=False, operating_hours=hours)
    r = client.get(f"/api/v1/part-types/{pt.id}/reliability", headers=headers(token))
    assert r.status_code == 422
    body = r.json()
    assert "need at least 5 failures to fit a Weibull, got 2" in body["detail"]
    assert (body["n_failures"], body["n_censored"], body["min_failures"]) == (2, 1, 5)
    r = client.get(f"/api/v1/part-types/{pt.id}/reliability", params={"min_failures": 2}, headers=headers(token))
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/part-types/{pt.id}/reliability", params={"min_failures": 1},
                      headers=headers(token)).status_code == 422
    assert client.get("/api/v1/part-types/999999/reliability", headers=headers(token)).status_code == 404
    _, customer = make_user(session, "customer")
    assert client.get(f"/api/v1/part-types/{pt.id}/reliability", headers=headers(customer)).status_code == 403


def test_the_failure_rule(client: TestClient, session: Session, settings: Settings) -> None:
    tech, token = make_user(session, "technician")
    pt = make_part_type(session)
    other = make_part_type(session)

    def core(hours: float, part_type_id: int | None = None):  # type: ignore[no-untyped-def]
        part = make_part(session, part_type_id=part_type_id or pt.id, operating_hours=hours)
        record(session, part, tech, "received")
        record(session, part, tech, "inspected", grade="C")
        return part

    worn = core(100)
    record(session, worn, tech, "dispositioned", disposition="recycle", reason="worn gear teeth")
    obsolete = core(200)
    record(session, obsolete, tech, "dispositioned", disposition="scrap", reason="Obsolete model, no demand")
    doa = core(0)
    record(session, doa, tech, "tested", passed=False)  # dead on arrival: counted apart, not fitted
    scrapped, recycled = core(300), core(400)
    parent = core(500, other.id)
    child = make_part(session, part_type_id=pt.id, operating_hours=600)
    record(session, child, tech, "installed", parent_part_id=parent.id)
    record(session, parent, tech, "repaired", replaced_part_ids=[child.id])
    passed = core(700)
    record(session, passed, tech, "tested", passed=True)
    close_with_verdicts(session, settings, {"part_id": scrapped.id, "verdict": "scrap"},
                        {"part_id": recycled.id, "verdict": "recycle"})  # a recycle verdict is not a failure

    body = client.get(f"/api/v1/part-types/{pt.id}/reliability", params={"min_failures": 2},
                      headers=headers(token)).json()
    reasons = {f["part_id"]: f["reason"] for f in body["failures"]}
    assert reasons == {worn.id: "dispositioned recycle: worn gear teeth", doa.id: "failed test",
                       scrapped.id: "verdict scrap", child.id: f"replaced during repair of part {parent.id}"}
    assert (body["n_failures"], body["n_zero_hour_failures"]) == (3, 1)
    assert body["n_censored"] == 3  # obsolete, recycled (verdict recycle), passed


def test_mtbf_and_mttr_of_a_refurbished_robot(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    robot = make_robot(session)
    pt = make_part_type(session)
    first = make_part(session, part_type_id=pt.id, operating_hours=1000)
    spare = make_part(session, part_type_id=pt.id, operating_hours=0)
    steady = make_part(session, part_type_id=pt.id, operating_hours=50)
    record(session, first, tech, "received")
    record(session, steady, tech, "received")
    record(session, first, tech, "installed", robot_id=robot.id, position="J1", operating_hours=1200)
    record(session, steady, tech, "installed", robot_id=robot.id, position="J2", operating_hours=50)
    record(session, first, tech, "tested", passed=False, operating_hours=1500)
    record(session, first, tech, "removed", operating_hours=1500)
    record(session, spare, tech, "installed", robot_id=robot.id, position="J1", operating_hours=0)
    record(session, steady, tech, "tested", passed=True, operating_hours=450)
    r = client.get(f"/api/v1/robots/{robot.id}/reliability", headers=headers(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refurbished"] is True  # the J2 part came in as a core
    assert body["operating_h"] == 400.0  # the J2 part ran 50 -> 450 h; the failed J1 part 1200 -> 1500 h
    assert (body["n_failures"], body["n_repairs"]) == (1, 1)
    assert body["mtbf_h"] == 400.0
    installs = {i.part_id: i for i in session.exec(select(Installation)).all()}
    down_h = (installs[spare.id].installed_at - installs[first.id].removed_at).total_seconds() / 3600
    assert body["mttr_h"] == pytest.approx(down_h)
    assert body["availability"] == pytest.approx(400 / (400 + down_h))
    assert body["failures"][0]["position"] == "J1"
    assert body["failures"][0]["reason"] == "failed test"


def test_robot_without_hours_has_no_mtbf(client: TestClient, session: Session) -> None:
    _, token = make_user(session, "technician")
    robot = make_robot(session)
    body = client.get(f"/api/v1/robots/{robot.id}/reliability", headers=headers(token)).json()
    assert (body["operating_h"], body["mtbf_h"], body["mttr_h"], body["refurbished"]) == (0.0, None, None, False)
