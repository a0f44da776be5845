"""The part passport (one DPP-ready document) and the emission-factor table it and the KPIs use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb.config import Settings
from refurb.metrics import emission_factors
from refurb.parts.models import PartEvent
from tests.factories import headers, make_part, make_part_type, make_robot, make_user
from tests.metrics.helpers import COPPER, STEEL, close_with_verdicts, record


def test_passport_carries_the_whole_record(client: TestClient, session: Session, settings: Settings) -> None:
    tech, token = make_user(session, "technician")
    pt = make_part_type(session, part_number="SM-J1-3K", gtin="09506000134352", design_life_h=30000,
                        industry_average_life_h=20000,
                        materials=[{"material": "steel", "mass_kg": 6.0, "recycled_fraction": 0.5},
                                   {"material": "copper", "mass_kg": 2.0, "recycled_fraction": 0.0}])
    robot = make_robot(session)
    part = make_part(session, part_type_id=pt.id, serial="MOTOR-7", operating_hours=3000, source_robot_id=robot.id)
    encoder = make_part(session, serial="ENC-7")
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="B", findings=["worn seal"])
    record(session, encoder, tech, "installed", parent_part_id=part.id)
    record(session, part, tech, "tested", passed=True, test_run_id=42,
           results=[{"check": "vib_mm_s", "measured": 1.1, "limit": 4.5, "vibration_zone": "B", "passed": True}])
    ticket_id = close_with_verdicts(session, settings, {"part_id": part.id, "verdict": "approve_reuse"})
    record(session, part, tech, "installed", robot_id=robot.id, position="J1")

    r = client.get(f"/api/v1/parts/{part.id}/passport", headers=headers(token))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["passport_version"] == "refurb-dpp-1"
    assert doc["identity"]["serial"] == "MOTOR-7"
    assert doc["identity"]["gtin"] == "09506000134352"
    assert doc["identity"]["digital_link"] == "https://id.refurb.example/01/09506000134352/21/MOTOR-7"
    assert doc["part_type"]["part_number"] == "SM-J1-3K"
    assert doc["materials"]["mass_kg"] == 8.0
    assert doc["materials"]["recycled_content_share"] == pytest.approx(3.0 / 8.0)
    assert [m["material"] for m in doc["materials"]["composition"]] == ["steel", "copper"]
    assert doc["genealogy"]["installed_in"]["robot_id"] == robot.id
    assert [c["serial"] for c in doc["genealogy"]["children"]] == ["ENC-7"]
    events = doc["events"]
    assert [e["type"] for e in events] == ["received", "inspected", "tested", "dispositioned", "installed"]
    chain = doc["chain"]
    assert chain["valid"] is True
    assert chain["head"] == events[-1]["hash"]
    assert chain["events"] == 5
    assert doc["tests"] == [{"seq": 3, "occurred_at": events[2]["occurred_at"], "passed": True, "test_run_id": 42,
                             "results": events[2]["details"]["results"]}]
    assert [(v["verdict"], v["ticket_id"]) for v in doc["verdicts"]] == [("approve_reuse", ticket_id)]
    assert doc["score"]["recommendation"] == "reuse"
    assert doc["score"]["inputs"]["scoring"]["verdict"] == "approve_reuse"
    circ = doc["circularity"]
    assert circ["reused"] is True
    assert circ["embodied_co2e_kg"] == pytest.approx(6 * STEEL + 2 * COPPER)
    assert circ["unmatched_materials_kg"] == {}
    assert circ["mci"]["V"] == 0.0  # reused: all feedstock from reuse
    assert circ["mci"]["X"] == pytest.approx(1.5)
    json.dumps(doc)  # one plain JSON document


def test_passport_reports_a_broken_chain(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    part = make_part(session)
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="A")
    event = session.get(PartEvent, 1)
    assert event is not None
    event.details = {"grade": "C"}  # tampering
    session.add(event)
    session.commit()
    chain = client.get(f"/api/v1/parts/{part.id}/passport", headers=headers(token)).json()["chain"]
    assert chain["valid"] is False
    assert chain["first_broken"] == 0


def test_shipped_emission_factors() -> None:
    table = emission_factors.load()
    assert table.version == "2025.1-ice2.0"
    assert table.factor("Steel") == 1.46
    assert table.factor("stainless") == 6.15
    assert table.factor("cast iron") == 2.03
    assert table.factor("Cast Aluminium") == 9.16
    assert table.factor("copper") == 2.7
    assert table.factor("NdFeB magnet") is None
    described = table.describe()
    assert all(m["source"] for m in described["materials"].values())
    assert described["electricity"]["source"]


def test_emission_factor_file_is_validated_and_configurable(client: TestClient, session: Session, app,
                                                            tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"materials.steel needs a 'factor' and a non-empty 'source'"):
        emission_factors.parse({"version": "x", "materials": {"steel": {"factor": 1.0}}})
    with pytest.raises(ValueError, match=r"materials.steel.factor must be a finite number >= 0"):
        emission_factors.parse({"version": "x", "materials": {"steel": {"factor": -1, "source": "s"}}})
    with pytest.raises(ValueError, match="alias 'iron' names two materials"):
        emission_factors.parse({"version": "x", "materials": {
            "steel": {"factor": 1, "source": "s", "aliases": ["iron"]},
            "cast iron": {"factor": 2, "source": "s", "aliases": ["iron"]}}})
    custom = tmp_path / "factors.json"
    custom.write_text(json.dumps({"version": "test-1", "materials": {"steel": {"factor": 2.0, "source": "test"}},
                                  "electricity": {"factor_kg_per_kwh": 0.0, "source": "test"},
                                  "reman_energy_kwh_per_kg": {"value": 0.0, "source": "test"}}))
    app.state.settings = Settings(database_url="sqlite://", check_schema_on_start=False, ingest_enabled=False,
                                  emission_factors_file=custom)
    _, token = make_user(session, "manager")
    tech = make_user(session, "technician")[0]
    part = make_part(session, part_type_id=make_part_type(session).id)  # 5 kg steel
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="A")
    record(session, part, tech, "dispositioned", disposition="reuse")
    co2 = client.get("/api/v1/circularity", headers=headers(token)).json()["co2e_avoided_kg"]
    assert co2["factors_version"] == "test-1"
    assert co2["total"] == pytest.approx(5 * 2.0)
