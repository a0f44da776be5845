"""Circularity: the MCI calculator (reference vectors, hand-computed cases, 422s), MCI per part type and robot,
and the remanufacturing KPIs of a small center counted by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb.auth import get_or_create_organisation
from refurb.db import utcnow
from refurb.parts import service as parts_service
from refurb.parts.models import RobotStatus
from tests.factories import headers, make_part, make_part_type, make_robot, make_user
from tests.metrics.helpers import COPPER, GRID, STEEL, record

MCI_URL = "/api/v1/circularity/mci"


@pytest.fixture
def token(session: Session) -> str:
    return make_user(session, "technician")[1]


# --- the calculator ---------------------------------------------------------------------------------------------

REFERENCE = [  # standards.md section 1
    ({"components": [{"mass_kg": 10}]}, 0.1),
    ({"components": [{"mass_kg": 10}], "lifetime_ratio": 2}, 0.55),
    ({"components": [{"mass_kg": 10}], "lifetime_ratio": 0.5}, 0.0),
    ({"components": [{"mass_kg": 10, "reused_input": 1, "reused_collection": 1}]}, 1.0),
    ({"components": [{"mass_kg": 10, "recycled_input": 1, "recycled_collection": 1}]}, 1.0),
]


@pytest.mark.parametrize(("body", "expected"), REFERENCE)
def test_calculator_reference_vectors(client: TestClient, token: str, body: dict[str, Any], expected: float) -> None:
    r = client.post(MCI_URL, json=body, headers=headers(token))
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"V", "W", "LFI", "X", "MCI"}
    assert r.json()["MCI"] == pytest.approx(expected, abs=1e-12)


def test_calculator_hand_computed_cases(client: TestClient, token: str) -> None:
    # one component with imperfect recycling: V=5, W0=5, WC=1, WF=5, W=8, LFI=13/22
    body = {"components": [{"mass_kg": 10, "recycled_input": 0.5, "recycled_collection": 0.5,
                            "collection_recycling_efficiency": 0.8, "feedstock_recycling_efficiency": 0.5}]}
    r = client.post(MCI_URL, json=body, headers=headers(token)).json()
    assert r["V"] == pytest.approx(5.0)
    assert r["W"] == pytest.approx(8.0)
    assert r["LFI"] == pytest.approx(13 / 22)
    assert r["MCI"] == pytest.approx(1 - 13 / 22 * 0.9)
    r = client.post(MCI_URL, json=body | {"lifetime_ratio": 0.8, "intensity_ratio": 1.5}, headers=headers(token))
    assert r.json()["X"] == pytest.approx(1.2)
    assert r.json()["MCI"] == pytest.approx(1 - 13 / 22 * 0.9 / 1.2)
    # multi-material: totals first, one LFI (6 kg reused in and out, 4 kg linear): V=4, W=4, LFI=0.4
    r = client.post(MCI_URL, json={"components": [{"mass_kg": 6, "reused_input": 1, "reused_collection": 1},
                                                  {"mass_kg": 4}]}, headers=headers(token)).json()
    assert (r["V"], r["W"], r["LFI"]) == pytest.approx((4.0, 4.0, 0.4))
    assert r["MCI"] == pytest.approx(0.64)


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"components": [{"mass_kg": 10, "recycled_input": 1.2}]}, ["components", 0, "recycled_input"], "less than"),
    ({"components": [{"mass_kg": 10, "reused_collection": -0.1}]}, ["components", 0, "reused_collection"],
     "greater than"),
    ({"components": [{"mass_kg": 1}, {"mass_kg": 10, "recycled_input": 0.7, "reused_input": 0.4}]},
     ["components", 1], "recycled_input + reused_input must be <= 1"),
    ({"components": [{"mass_kg": 10, "recycled_collection": 0.5, "reused_collection": 0.6}]}, ["components", 0],
     "recycled_collection + reused_collection must be <= 1"),
    ({"components": [{"mass_kg": 10, "collection_recycling_efficiency": 0}]},
     ["components", 0, "collection_recycling_efficiency"], "greater than 0"),
    ({"components": [{"mass_kg": 10, "feedstock_recycling_efficiency": 1.5}]},
     ["components", 0, "feedstock_recycling_efficiency"], "less than or equal to 1"),
    ({"components": [{"mass_kg": 10}], "lifetime_ratio": 0}, ["lifetime_ratio"], "greater than 0"),
    ({"components": [{"mass_kg": 10}], "intensity_ratio": -2}, ["intensity_ratio"], "greater than 0"),
    ({"components": [{"mass_kg": 0}]}, ["components", 0, "mass_kg"], "greater than 0"),
    ({"components": [{"recycled_input": 0.1}]}, ["components", 0, "mass_kg"], "required"),
    ({"components": []}, ["components"], "at least 1"),
    ({"components": [{"mass_kg": 10, "recyled_input": 0.5}]}, ["components", 0, "recyled_input"], "not permitted"),
])
def test_calculator_refuses_invalid_input_naming_the_field(client: TestClient, token: str, body: dict[str, Any],
                                                          field: list[Any], words: str) -> None:
    r = client.post(MCI_URL, json=body, headers=headers(token))
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][1:] == field and words in e["msg"] for e in errors), errors


# --- a small center counted by hand ---------------------------------------------------------------------------------


@pytest.fixture
def center(session: Session) -> dict[str, Any]:
    """Org A sends five cores (p1..p5) from two robots; org B one (p8). R1 is rebuilt from p1 and a new part n1 and
    shipped; R2 is scrapped. p2 gets a new encoder c1 during its remanufacture.

    | core | type | grade | outcome | notes |
    |---|---|---|---|---|
    | p1 | S 5 kg | A | reuse (disposition) | from R1, back into R1 |
    | p2 | S 5 kg | B | remanufacture (repaired, certified) | cost 200 and 3 kWh recorded; new c1 fitted |
    | p3 | R 20 kg | C | recycle | from R2 |
    | p4 | R 20 kg | scrap | scrap | |
    | p5 | S 5 kg | - | pending | |
    """
    tech = make_user(session, "technician")[0]
    org_a = get_or_create_organisation(session, name="Acme Robotics")
    org_b = get_or_create_organisation(session, name="Busan Metal")
    session.commit()
    servo = make_part_type(session, category="servo_motor", new_price=1000.0, design_life_h=None,
                           materials=[{"material": "Steel", "mass_kg": 4.0, "recycled_fraction": 0.25},
                                      {"material": "electronics", "mass_kg": 1.0, "recycled_fraction": 0.0}])
    reducer = make_part_type(session, category="reducer", new_price=4000.0,
                             materials=[{"material": "cast iron", "mass_kg": 20.0, "recycled_fraction": 0.0}])
    encoder = make_part_type(session, category="encoder", new_price=400.0,
                             materials=[{"material": "copper", "mass_kg": 1.0, "recycled_fraction": 0.0}])
    r1 = make_robot(session, owner_org_id=org_a.id)
    r2 = make_robot(session, owner_org_id=org_a.id)
    started = utcnow()

    def part(pt: Any, **kw: Any) -> Any:
        return make_part(session, part_type_id=pt.id, owner_org_id=kw.pop("org", org_a.id), **kw)

    p1, p2, p5 = part(servo, source_robot_id=r1.id), part(servo), part(servo)
    p3, p4 = part(reducer, source_robot_id=r2.id), part(reducer)
    n1, c1 = part(servo), part(encoder)
    p8 = part(servo, org=org_b.id)
    for p in (p1, p2, p3, p4, p5, p8):
        record(session, p, tech, "received")
    for p, grade in ((p1, "A"), (p2, "B"), (p3, "C"), (p4, "scrap"), (p8, "A")):
        record(session, p, tech, "inspected", grade=grade)
    record(session, p1, tech, "dispositioned", disposition="reuse")
    record(session, p8, tech, "dispositioned", disposition="reuse")
    record(session, p1, tech, "installed", robot_id=r1.id, position="J1")
    record(session, n1, tech, "installed", robot_id=r1.id, position="J2")
    record(session, c1, tech, "installed", parent_part_id=p2.id)
    record(session, p2, tech, "repaired", operations=["rewind"], extra={"cost": 200.0, "energy_kwh": 3.0})
    record(session, p2, tech, "tested", passed=True)
    record(session, p2, tech, "certified")
    record(session, p3, tech, "dispositioned", disposition="recycle", reason="worn")
    record(session, p4, tech, "dispositioned", disposition="scrap")
    parts_service.set_robot_status(session, r1, RobotStatus.SHIPPED)
    parts_service.set_robot_status(session, r2, RobotStatus.SCRAPPED)
    session.commit()
    return {"org_a": org_a.id, "org_b": org_b.id, "r1": r1.id, "servo": servo.id, "started": started,
            "parts": {"p1": p1.id, "p2": p2.id, "n1": n1.id}}


def test_kpis_of_a_hand_counted_center(client: TestClient, session: Session, center: dict[str, Any]) -> None:
    _, token = make_user(session, "manager")
    r = client.get("/api/v1/circularity", params={"org": center["org_a"]}, headers=headers(token))
    assert r.status_code == 200, r.text
    k = r.json()
    assert k["org_id"] == center["org_a"]
    assert k["cores_received"] == {"count": 5, "mass_kg": 55.0}
    assert {g: v["count"] for g, v in k["core_class_distribution"].items()} == \
        {"A": 1, "B": 1, "C": 1, "scrap": 1, "uninspected": 1}
    assert k["core_class_distribution"]["A"]["share"] == pytest.approx(0.2)
    assert {d: (v["count"], v["mass_kg"]) for d, v in k["disposition_mix"].items()} == {
        "reuse": (1, 5.0), "remanufacture": (1, 5.0), "recycle": (1, 20.0), "scrap": (1, 20.0), "pending": (1, 5.0)}
    assert k["component_salvage_rate"] == {"by_count": 0.5, "by_mass": 0.2, "decided": 4, "pending": 1}
    assert k["core_recovery_rate"] == 0.75
    assert k["core_disposal_rate"] == 0.25
    assert k["product_salvage_rate"] == {"rate": 0.5, "robots_salvaged": 1, "robots_scrapped": 1,
                                         "robots_in_process": 0}
    assert k["reuse_share_of_shipped_robots"] == {"by_mass": 0.5, "robots": 1, "reused_mass_kg": 5.0,
                                                  "mass_kg": 10.0}
    # value retained: p1 1000 - 35 % default, p2 1000 - 200 recorded
    assert k["value_retained"] == pytest.approx({"amount": 1450.0, "new_value": 2000.0, "reman_cost": 550.0,
                                                 "ratio": 0.725})
    co2 = k["co2e_avoided_kg"]
    embodied = 2 * 4.0 * STEEL
    energy = (0.5 * 5.0 + 3.0) * GRID  # p1: default 0.5 kWh/kg; p2: 3 kWh recorded
    assert co2["embodied_kg"] == pytest.approx(embodied)
    assert co2["reman_energy_kg"] == pytest.approx(energy)
    assert co2["new_parts_fitted_kg"] == pytest.approx(1.0 * COPPER)
    assert co2["total"] == pytest.approx(embodied - energy - COPPER)
    assert co2["unmatched_materials_kg"] == {"electronics": 2.0}
    assert co2["factors_version"] == "2025.1-ice2.0"
    # R1: p1 reused (F_U = 1), n1 new (F_R 0.25 of its steel); type S was collected for reuse every time (C_U = 1):
    # V = 4 * 0.75 + 1 = 4 kg of 10, W = 0, LFI = 0.2, MCI = 1 - 0.2 * 0.9
    assert k["center_mci"] == {"value": pytest.approx(0.82), "products": 1, "weighting": "mass"}


def test_kpis_period_org_and_customer_scope(client: TestClient, session: Session, center: dict[str, Any]) -> None:
    _, staff = make_user(session, "manager")
    _, customer = make_user(session, "customer", org="Acme Robotics")
    everyone = client.get("/api/v1/circularity", headers=headers(staff)).json()
    assert everyone["cores_received"]["count"] == 6
    assert everyone["disposition_mix"]["reuse"]["count"] == 2
    own = client.get("/api/v1/circularity", params={"org": center["org_b"]}, headers=headers(customer)).json()
    assert own["org_id"] == center["org_a"]  # forced to the customer's own organisation
    assert own["cores_received"]["count"] == 5
    started = center["started"]
    before = client.get("/api/v1/circularity", params={"end": started.isoformat()}, headers=headers(staff)).json()
    assert before["cores_received"]["count"] == 0
    assert before["component_salvage_rate"]["by_count"] is None
    after = client.get("/api/v1/circularity", params={"start": started.isoformat(),
                                                      "end": (utcnow() + timedelta(hours=1)).isoformat()},
                       headers=headers(staff)).json()
    assert after["cores_received"]["count"] == 6
    r = client.get("/api/v1/circularity", params={"start": "2026-01-02T00:00:00"}, headers=headers(staff))
    assert r.status_code == 422
    assert "time zone" in r.json()["detail"]
    r = client.get("/api/v1/circularity", params={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
                   headers=headers(staff))
    assert r.status_code == 422


def test_robot_and_part_type_circularity(client: TestClient, session: Session, center: dict[str, Any]) -> None:
    _, token = make_user(session, "manager")
    r = client.get(f"/api/v1/robots/{center['r1']}/circularity", headers=headers(token))
    assert r.status_code == 200, r.text
    robot = r.json()
    assert (robot["mass_kg"], robot["reused_mass_kg"], robot["reused_share_by_mass"]) == (10.0, 5.0, 0.5)
    assert robot["mci"]["V"] == pytest.approx(4.0)
    assert robot["mci"]["MCI"] == pytest.approx(0.82)
    assert {c["part_id"]: c["reused"] for c in robot["components"]} == {center["parts"]["p1"]: True,
                                                                       center["parts"]["n1"]: False}
    r = client.get(f"/api/v1/part-types/{center['servo']}/circularity", headers=headers(token))
    assert r.status_code == 200, r.text
    pt = r.json()
    assert pt["collection"]["reused_collection"] == 1.0  # p1 and p8: reuse
    assert pt["as_new"]["MCI"] == pytest.approx(1 - 0.9 * 0.4)  # V = 3 + 1 of 5 kg: LFI = 4 / 10, no waste
    assert pt["remanufactured"]["MCI"] == pytest.approx(1.0)
    # supplied units of S: p1 and n1 in R1, p2 certified; two of three had a previous life
    assert (pt["center"]["units_supplied"], pt["center"]["reused_units"]) == (3, 2)
    assert pt["center"]["MCI"] == pytest.approx(1 - 0.9 * (4 * (1 - 0.25 / 3 - 2 / 3) + 1 / 3) / 10)


def test_circularity_access_rules(client: TestClient, session: Session, center: dict[str, Any]) -> None:
    _, acme = make_user(session, "customer", org="Acme Robotics")
    _, busan = make_user(session, "customer", org="Busan Metal")
    assert client.get(f"/api/v1/robots/{center['r1']}/circularity", headers=headers(acme)).status_code == 200
    assert client.get(f"/api/v1/robots/{center['r1']}/circularity", headers=headers(busan)).status_code == 404
    assert client.get(f"/api/v1/robots/{center['r1']}/reliability", headers=headers(busan)).status_code == 404
    assert client.get(f"/api/v1/part-types/{center['servo']}/circularity", headers=headers(acme)).status_code == 403
    pt = make_part_type(session, materials=[])
    _, staff = make_user(session, "technician")
    r = client.get(f"/api/v1/part-types/{pt.id}/circularity", headers=headers(staff))
    assert r.status_code == 422
    assert "no material composition" in r.json()["detail"]
