"""CSV import is all or nothing and names every bad row; export round-trips."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from refurb import auth
from tests.factories import headers, make_part, make_part_type, make_user

GOOD = "serial,part_number,operating_hours,cycles,owner_org,notes\nA-1,RV-80E,1200.5,300,Acme,ok\nA-2,RV-80E,,,,\n"


def test_import_good_file(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "manager")
    make_part_type(session, part_number="RV-80E")
    auth.get_or_create_organisation(session, name="Acme")
    session.commit()
    r = client.post("/api/v1/parts/import", content=GOOD.encode(), headers=headers(token) | {
        "content-type": "text/csv"})
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 2
    parts = client.get("/api/v1/parts", params={"serial": "A-1"}, headers=headers(token)).json()["data"]
    assert parts[0]["operating_hours"] == 1200.5
    assert parts[0]["cycles"] == 300
    assert parts[0]["owner_org_id"] is not None


def test_import_with_bad_rows_imports_nothing_and_lists_each(client: TestClient, session
                                                               ) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "manager")
    pt = make_part_type(session, part_number="RV-80E")
    make_part(session, part_type_id=pt.id, serial="EXISTS")
    bad = ("serial,part_number,operating_hours,cycles\n"
           "OK-1,RV-80E,10,1\n"        # line 2 fine
           ",RV-80E,10,1\n"            # line 3 empty serial
           "X-1,NOPE,10,1\n"           # line 4 unknown part number
           "X-2,RV-80E,-5,1\n"         # line 5 negative hours
           "X-3,RV-80E,10,many\n"      # line 6 bad cycles
           "OK-1,RV-80E,1,1\n"         # line 7 duplicate of line 2
           "EXISTS,RV-80E,1,1\n")      # line 8 already stored
    r = client.post("/api/v1/parts/import", content=bad.encode(), headers=headers(token) | {
        "content-type": "text/csv"})
    assert r.status_code == 422
    errors = {e["line"]: e["error"] for e in r.json()["errors"]}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]
    assert "serial is empty" in errors[3]
    assert "unknown part_number 'NOPE'" in errors[4]
    assert "operating_hours" in errors[5]
    assert "cycles" in errors[6]
    assert "duplicate of line 2" in errors[7]
    assert "already exists" in errors[8]
    assert client.get("/api/v1/parts", headers=headers(token)).json()["count"] == 1


def test_import_needs_the_required_columns(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "admin")
    r = client.post("/api/v1/parts/import", content=b"name,qty\nx,1\n", headers=headers(token))
    assert r.status_code == 422
    assert "serial, part_number" in r.json()["detail"]
    r = client.post("/api/v1/parts/import", content=b"\xff\xfe\x00", headers=headers(token))
    assert r.status_code == 422


def test_technicians_cannot_import(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    assert client.post("/api/v1/parts/import", content=GOOD.encode(), headers=headers(token)).status_code == 403


def test_export_lists_parts(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    pt = make_part_type(session, part_number="SM-1")
    make_part(session, part_type_id=pt.id, serial="E-1", operating_hours=5)
    r = client.get("/api/v1/parts/export.csv", headers=headers(token))
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["serial"], row["part_number"], row["status"], row["operating_hours"]) for row in rows] == [
        ("E-1", "SM-1", "registered", "5.0")]
