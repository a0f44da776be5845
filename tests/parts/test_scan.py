"""Scanning: every vector of standards.md section 5, the resolution contract, actions and labels."""

from __future__ import annotations

import re

import pytest
import segno
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from refurb.parts.scan import GS, ScanError, parse_code
from tests.factories import headers, make_part, make_part_type, make_robot, make_user

GTIN = "09506000134352"


@pytest.mark.parametrize(("code", "expected"), [
    ("]d2011231231231233310ABC123" + GS + "99TESTING", {"01": "12312312312333", "10": "ABC123", "99": "TESTING"}),
    ("]d2011231231231233310ABC123<GS>99TESTING", {"01": "12312312312333", "10": "ABC123", "99": "TESTING"}),
    ("010703206980498815210526100329", {"01": "07032069804988", "15": "210526", "10": "0329"}),
    ("]E402345673", {"01": "00000002345673"}),
    ("]C1" + "01" + GTIN + "21SN-1", {"01": GTIN, "21": "SN-1"}),
    ("]Q3" + "01" + GTIN + "21SN-1", {"01": GTIN, "21": "SN-1"}),
    ("https://id.example.com/01/" + GTIN + "/21/SN-1?10=AB", {"01": GTIN, "21": "SN-1", "10": "AB"}),
    ("]Q1https://id.example.com/01/" + GTIN + "/21/SN-1", {"01": GTIN, "21": "SN-1"}),
    ("8004950600013435ROBOT1", {"8004": "950600013435ROBOT1"}),
])
def test_reference_vectors_parse(code: str, expected: dict[str, str]) -> None:
    assert parse_code(code).gs1 == expected


@pytest.mark.parametrize(("code", "message"), [
    ("]E402345674", "check digit"),
    ("]d2011231231231233410ABC", "check digit"),
    ("]d201123", "not a valid GS1"),
    ("]d2", "no data"),
    ("]Z9abc", "unknown symbology"),
    ("", "empty"),
    ("abc\x07", "control"),
    ("https://example.com/nothing/here", "not a GS1 Digital Link"),
])
def test_malformed_codes_say_what_is_wrong(code: str, message: str) -> None:
    with pytest.raises(ScanError, match=message):
        parse_code(code)


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_parser_never_raises_anything_but_scan_error(code: str) -> None:
    try:
        parse_code(code)
    except ScanError:
        pass


@pytest.fixture
def station(client: TestClient, session):  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    pt = make_part_type(session, gtin=GTIN, part_number="RV-80E")
    part = make_part(session, part_type_id=pt.id, serial="SN-ACC-0042")
    robot = make_robot(session, serial="950600013435ROBOT1")

    def scan(code: str, **extra):  # type: ignore[no-untyped-def]
        return client.post("/api/v1/scan", json={"code": code, **extra}, headers=headers(token))

    return scan, pt, part, robot, token


def test_gs1_datamatrix_finds_the_part(station) -> None:  # type: ignore[no-untyped-def]
    scan, pt, part, _, _ = station
    r = scan(f"]d201{GTIN}21SN-ACC-0042\r\n")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["kind"], body["id"]) == ("part", part.id)
    assert body["gs1"] == {"01": GTIN, "21": "SN-ACC-0042"}
    assert body["record"]["serial"] == "SN-ACC-0042"
    assert body["record"]["part_number"] == "RV-80E"
    assert "received" in body["next_actions"]


def test_plain_serial_digital_link_and_giai(station) -> None:  # type: ignore[no-untyped-def]
    scan, pt, part, robot, _ = station
    assert scan("SN-ACC-0042").json()["id"] == part.id
    assert scan(f"https://id.refurb.example/01/{GTIN}/21/SN-ACC-0042").json()["id"] == part.id
    r = scan("]d28004950600013435ROBOT1")
    assert (r.json()["kind"], r.json()["id"]) == ("robot", robot.id)
    r = scan(f"]C101{GTIN}")
    assert (r.json()["kind"], r.json()["id"]) == ("part_type", pt.id)
    assert scan(robot.serial).json()["kind"] == "robot"


def test_unknown_code_is_404_echoing_what_was_parsed(station) -> None:  # type: ignore[no-untyped-def]
    scan, *_ = station
    r = scan(f"]d201{GTIN}21NO-SUCH-SERIAL")
    assert r.status_code == 404
    assert r.json()["parsed"]["gs1"] == {"01": GTIN, "21": "NO-SUCH-SERIAL"}
    r = scan("UNKNOWN-SERIAL-9")
    assert r.status_code == 404
    assert r.json()["parsed"] == {"format": "plain", "text": "UNKNOWN-SERIAL-9"}
    assert scan("]E402345673").status_code == 404  # well-formed EAN-8 of no part type


def test_malformed_code_is_422(station) -> None:  # type: ignore[no-untyped-def]
    scan, *_ = station
    r = scan("]E402345674")
    assert r.status_code == 422
    assert "check digit" in r.json()["detail"]


def test_scan_with_action_records_the_step(station) -> None:  # type: ignore[no-untyped-def]
    scan, _, part, _, _ = station
    r = scan("SN-ACC-0042", action="received")
    assert r.status_code == 200, r.text
    assert r.json()["event"]["type"] == "received"
    assert r.json()["record"]["status"] == "received"
    r = scan("SN-ACC-0042", action={"type": "inspected", "grade": "A", "station": "bench-2"})
    assert r.json()["record"]["grade"] == "A"
    assert r.json()["record"]["station"] == "bench-2"
    r = scan("SN-ACC-0042", action="certified")
    assert r.status_code == 409
    assert r.json()["current_state"] == "inspected"
    r = scan("SN-ACC-0042", action="inspected")  # needs a grade
    assert r.status_code == 422


def test_consultants_look_up_but_do_not_record(client: TestClient, station, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "consultant")
    r = client.post("/api/v1/scan", json={"code": "SN-ACC-0042"}, headers=headers(token))
    assert r.status_code == 200
    r = client.post("/api/v1/scan", json={"code": "SN-ACC-0042", "action": "received"}, headers=headers(token))
    assert r.status_code == 403


def test_label_round_trip(client: TestClient, station, session) -> None:  # type: ignore[no-untyped-def]
    scan, pt, part, _, token = station
    r = client.get(f"/api/v1/parts/{part.id}/label.svg", headers=headers(token))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    content = r.headers["x-label-content"]
    assert content.endswith(f"/01/{GTIN}/21/SN-ACC-0042")
    assert "SN-ACC-0042" in r.text
    assert "RV-80E" in r.text
    # the QR modules in the SVG are exactly those of the content's QR code
    expected = segno.make(content, error="m", micro=False).svg_inline(scale=4, border=2)
    path = re.search(r' d="([^"]+)"', expected).group(1)  # type: ignore[union-attr]
    assert path in r.text
    assert scan(content).json()["id"] == part.id


def test_label_without_gtin_carries_the_refurb_url(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    part = make_part(session, serial="<b>odd serial</b>")
    r = client.get(f"/api/v1/parts/{part.id}/label.svg", headers=headers(token))
    assert r.headers["x-label-content"] == f"http://testserver/parts/{part.id}"
    assert "<b>odd" not in r.text
    assert "&lt;b&gt;odd serial" in r.text
    found = client.post("/api/v1/scan", json={"code": r.headers["x-label-content"]}, headers=headers(token)).json()
    assert found["id"] == part.id
