"""The center dashboard on a small hand-counted center: the aggregates, the page and the standalone export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb.metrics import dashboard
from refurb.parts import service as parts_service
from refurb.parts.models import EventCreate
from tests.factories import make_part, make_part_type, make_user


def _center(session: Session):  # type: ignore[no-untyped-def]
    """Five motors and two boards received; motors: A reuse, A reuse, B remanufacture, scrap-graded recycle,
    one not yet inspected; boards: C scrap, B pending."""
    tech, _ = make_user(session, "technician")
    motor, board = make_part_type(session, part_number="MOTOR"), make_part_type(session, part_number="BOARD")
    plan = [(motor, "A", "reuse"), (motor, "A", "reuse"), (motor, "B", "remanufacture"), (motor, "scrap", "recycle"),
            (motor, None, None), (board, "C", "scrap"), (board, "B", None)]
    for pt, grade, disposition in plan:
        part = make_part(session, part_type_id=pt.id)
        parts_service.record_event(session, part, EventCreate(type="received"), actor=tech)
        if grade:
            parts_service.record_event(session, part, EventCreate(type="inspected", grade=grade), actor=tech)
        if disposition:
            parts_service.record_event(session, part, EventCreate(type="dispositioned", disposition=disposition),
                                       actor=tech)
    session.commit()
    return tech


def test_aggregates_match_the_hand_count(session: Session) -> None:
    _center(session)
    intake = dashboard.intake_by_month(session, start=None, end=None, org_id=None)
    assert len(intake["months"]) == 1
    assert {k: v[0] for k, v in intake["series"].items()} == {"reuse": 2, "remanufacture": 1, "recycle": 1,
                                                               "scrap": 1, "pending": 2}
    flows = {(a, b): n for a, b, n in dashboard.grade_flows(session, start=None, end=None, org_id=None)}
    assert flows[("intake", "grade A")] == 2
    assert flows[("intake", "not inspected")] == 1
    assert flows[("grade A", "reuse")] == 2
    assert flows[("grade scrap", "recycle")] == 1
    assert flows[("grade C", "scrap")] == 1
    rates = dashboard.rates_by_part_type(session, start=None, end=None, org_id=None)
    by_type = dict(zip(rates["part_types"], zip(rates["salvage_by_count"], rates["recovery"], strict=True),
                       strict=True))
    assert by_type["MOTOR"] == (3 / 4, 4 / 4)
    assert by_type["BOARD"] == (0.0, 0.0)
    future = datetime.now(UTC) + timedelta(days=1)
    assert dashboard.intake_by_month(session, start=future, end=None, org_id=None)["months"] == []


def test_dashboard_page_and_export(client: TestClient, session: Session, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _center(session)
    user, _ = make_user(session, "manager", password="dash-pass-1")
    client.post("/login", data={"username": user.username, "password": "dash-pass-1"})
    r = client.get("/dashboard")
    assert r.status_code == 200
    assert "Cores received" in r.text
    assert 'src="/static/vendor/plotly.min.js"' in r.text
    assert "cdn.plot.ly" not in r.text
    assert 'id="chart-sankey"' in r.text
    assert client.get("/dashboard?start=31-01-2026", headers={"accept": "text/html"}).status_code == 422
    from dashboards.pages import export_html

    html = export_html(session, user, start=None, end=None, org=None, settings=None)
    assert "<script src=" not in html
    assert "Plotly.newPlot" in html
    assert "chart-intake" in html


def test_customers_do_not_get_the_center_dashboard(client: TestClient, session: Session) -> None:
    user, _ = make_user(session, "customer", password="dash-pass-1")
    client.post("/login", data={"username": user.username, "password": "dash-pass-1"})
    assert client.get("/dashboard").status_code == 403
