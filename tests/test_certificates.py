"""Certificates: a robot that passed certification, one that failed, and a part; as pages and as PDF."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb import certificates
from refurb.parts import service as parts_service
from tests.factories import make_robot, make_user
from tests.telemetry.test_runs_support import equip, make_template, run_template, simulate


def _login(client: TestClient, session: Session, role: str = "manager", **kw):  # type: ignore[no-untyped-def]
    user, _ = make_user(session, role, password="cert-pass-1", **kw)
    client.post("/login", data={"username": user.username, "password": "cert-pass-1"})
    return user


def test_certificate_of_a_robot_that_passed(client: TestClient, session: Session) -> None:
    user = _login(client, session)
    robot = make_robot(session, serial="KR16-CERT-1")
    parts = equip(session, robot, user)
    run = run_template(session, robot, make_template(session), simulate(session, robot), user)
    page = client.get(f"/robots/{robot.id}/certificate")
    assert page.status_code == 200
    assert f"CERTIFIED: test run #{run.id} passed all" in page.text
    assert "j3_bearing" in page.text.lower() or "bearing" in page.text.lower()
    assert parts["J3_motor"].serial in page.text
    doc = certificates.robot_certificate(session, parts_service.get_robot(session, robot.id), viewer=user)
    assert len(doc["parts"]) == len(parts)
    heads = [(p.serial, parts_service.get_part(session, p.id).chain_head) for p in parts.values()]
    assert doc["digest"] == certificates.record_digest(heads)
    assert doc["digest"] in page.text
    pdf = client.get(f"/robots/{robot.id}/certificate.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_certificate_says_not_certified_when_the_run_failed(client: TestClient, session: Session) -> None:
    user = _login(client, session)
    robot = make_robot(session)
    equip(session, robot, user)
    run_template(session, robot, make_template(session),
                 simulate(session, robot, faults=("overheat:J2",)), user)
    page = client.get(f"/robots/{robot.id}/certificate")
    assert "NOT CERTIFIED" in page.text
    assert "failed" in page.text


def test_part_certificate_and_customer_isolation(client: TestClient, session: Session) -> None:
    user = _login(client, session)
    robot = make_robot(session)
    part = equip(session, robot, user)["J1_motor"]
    page = client.get(f"/parts/{part.id}/certificate")
    assert page.status_code == 200
    assert "NOT CERTIFIED (status" in page.text
    assert part.serial in page.text
    assert client.get(f"/parts/{part.id}/certificate.pdf").content.startswith(b"%PDF")
    client.post("/logout")
    _login(client, session, "customer", org="Someone Else")
    assert client.get(f"/robots/{robot.id}/certificate", headers={"accept": "text/html"}).status_code == 404
