"""Reuse scores of hand-built parts: every factor, verdict overrides, explanations that add up, snapshots stored on
events (and only when an input changed), fleet-model refits, the vectorised recompute and its CLI."""

from __future__ import annotations

import math

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from refurb.auth import get_or_create_organisation
from refurb.cli import app as cli_app
from refurb.config import Settings
from refurb.errors import ValidationError
from refurb.metrics import scores
from refurb.metrics.config import scoring_config
from refurb.metrics.models import PartScore, ReliabilityModel, ScoreConfig
from refurb.scoring.reuse import ReuseInputs, ReuseThresholds, ReuseWeights, score_part
from tests.factories import headers, make_part, make_part_type, make_user
from tests.metrics.helpers import close_with_verdicts, fallback_survival, record, snapshot


def factor(body: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(f for f in body["factors"] if f["name"] == name)


def test_every_factor_of_a_hand_built_part(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    pt = make_part_type(session, category="servo_motor", new_price=1000.0, design_life_h=20000,
                        max_reman_generations=3, test_limits={"temp_rise_K": {"nominal": 10}})
    part = make_part(session, part_type_id=pt.id, operating_hours=6000)
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="B", findings=["scratch", "dent"])
    record(session, part, tech, "repaired", operations=["bearings"], extra={"cost": 450.0})
    record(session, part, tech, "tested", passed=True, operating_hours=6500, results=[
        {"check": "vib_mm_s", "measured": 1.0, "limit": 4.5, "vibration_zone": "B", "passed": True},
        {"check": "temp_rise_K", "measured": 34.0, "limit": 50.0, "passed": True},
        {"check": "run_in_h", "measured": 17.0, "limit": 16.0, "comparison": ">=", "passed": True}])

    r = client.get(f"/api/v1/parts/{part.id}/score", headers=headers(token))
    assert r.status_code == 200, r.text
    body = r.json()
    survival = fallback_survival(6500, 2 * 4000, 20000)
    expected = {"grade": 0.7 - 2 * 0.1,  # grade B, two findings
                "test": min(0.5 + 0.5 * (50 - 34) / (50 - 10), 0.75),  # worst margin: temperature; zone B 0.75
                "reliability": survival,
                "generation": 1 - 1 / 3,  # one repair in this visit
                "economics": 1 - 450 / 1000}  # recorded cost
    weights = {"grade": 0.25, "test": 0.25, "reliability": 0.20, "generation": 0.10, "economics": 0.20}
    for name, subscore in expected.items():
        f = factor(body, name)
        assert_allclose(f["subscore"], subscore, rtol=1e-12)
        assert_allclose(f["contribution"], 100 * weights[name] * subscore, rtol=1e-12)
        assert f["weight"] == weights[name]
        assert f["missing"] is False
    total = sum(100 * weights[k] * v for k, v in expected.items())
    assert_allclose(body["score"], total, rtol=1e-12)
    assert_allclose(sum(f["contribution"] for f in body["factors"]), body["score"], rtol=1e-12)
    assert body["recommendation"] == "remanufacture"  # 66.8: between 50 and 75
    assert (body["hold"], body["capped"], body["reasons"]) == (False, False, [])
    assert "worst margin from check 'temp_rise_K'" in factor(body, "test")["explanation"]
    assert "design-life fallback" in factor(body, "reliability")["explanation"]
    assert "recorded" in factor(body, "economics")["explanation"]
    scoring = body["inputs"]["scoring"]
    assert scoring["grade"] == "B"
    assert scoring["finding_count"] == 2
    assert scoring["test_passed"] is True
    assert scoring["vibration_zone"] == "B"
    assert_allclose(scoring["test_margin"], 0.4)
    assert (scoring["reman_generation"], scoring["max_generations"], scoring["reman_cost"]) == (1, 3, 450.0)
    context = body["inputs"]["context"]
    assert context["reliability"]["method"] == "design_life"
    assert context["reliability"]["mission_h"] == 8000
    assert context["test"]["worst_check"] == "temp_rise_K"
    assert [m["check"] for m in context["test"]["margins"]] == ["vib_mm_s", "temp_rise_K"]  # run-in: no nominal
    assert body["trigger"] == "event"
    assert body["config_version"].startswith("cfg-")


def test_missing_data_scores_neutral_on_first_read(client: TestClient, session: Session) -> None:
    _, token = make_user(session, "technician")
    pt = make_part_type(session, new_price=None, design_life_h=None)
    part = make_part(session, part_type_id=pt.id)
    r = client.get(f"/api/v1/parts/{part.id}/score", headers=headers(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trigger"] == "read"
    assert body["score"] == pytest.approx(25 * 0.5 + 25 * 0.5 + 20 * 0.5 + 10 * 1.0 + 20 * 0.5)  # 55
    assert body["recommendation"] == "remanufacture"
    missing = {f["name"]: f["missing"] for f in body["factors"]}
    assert missing == {"grade": True, "test": True, "reliability": True, "generation": False, "economics": True}
    assert "no reliability model" in factor(body, "reliability")["explanation"]
    # a second read stores nothing new
    assert client.get(f"/api/v1/parts/{part.id}/score", headers=headers(token)).json()["snapshot_id"] == \
        body["snapshot_id"]


def test_default_cost_fraction_per_category(session: Session) -> None:
    tech, _ = make_user(session, "technician")
    harness = make_part(session, part_type_id=make_part_type(session, category="cable_harness", new_price=900.0).id)
    record(session, harness, tech, "received")
    inputs = snapshot(session, harness).inputs
    assert inputs["scoring"]["reman_cost"] == pytest.approx(900 * 0.60)
    assert inputs["context"]["cost"] == {"source": "default_fraction", "fraction": 0.60, "category": "cable_harness"}


def test_quarantine_caps_and_holds_then_release_restores(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    part = make_part(session, operating_hours=100)
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="A")
    record(session, part, tech, "tested", passed=True, results=[{"check": "vib", "margin": 1.0, "vibration_zone": "A"}])
    free = snapshot(session, part)
    assert free.recommendation == "reuse"
    assert not free.hold
    record(session, part, tech, "quarantined", reason="customer reported noise")
    body = client.get(f"/api/v1/parts/{part.id}/score", headers=headers(token)).json()
    assert body["hold"] is True
    assert body["capped"] is True
    assert body["score"] == 25.0
    assert body["raw_score"] == pytest.approx(free.raw_score)
    assert body["recommendation"] != "reuse"
    assert any("quarantine" in reason for reason in body["reasons"])
    assert any("taken from event 4 (quarantined)" in reason for reason in body["reasons"])
    record(session, part, tech, "released")
    released = snapshot(session, part)
    assert (released.hold, released.recommendation) == (False, "reuse")
    assert released.score == pytest.approx(free.score)


def test_scrap_disposition_and_failed_test(session: Session) -> None:
    tech, _ = make_user(session, "technician")
    failed = make_part(session)
    record(session, failed, tech, "received")
    record(session, failed, tech, "inspected", grade="A")
    record(session, failed, tech, "tested", passed=False)
    snap = snapshot(session, failed)
    assert snap.factors[1]["subscore"] == 0.0
    assert snap.recommendation != "reuse"
    record(session, failed, tech, "dispositioned", disposition="scrap", reason="cracked housing")
    snap = snapshot(session, failed)
    assert (snap.score, snap.recommendation, snap.capped) == (0.0, "scrap", True)
    assert snap.inputs["scoring"]["verdict"] == "scrap"
    assert snap.inputs["context"]["verdict_source"] == {"from": "status", "status": "scrapped"}


def test_consultant_verdicts_override_the_score(client: TestClient, session: Session, settings: Settings) -> None:
    tech, token = make_user(session, "technician")
    poor = make_part(session, operating_hours=100)  # grade C, failed vibration zone: would not be reused
    good = make_part(session, operating_hours=100)
    for p, grade, zone in ((poor, "C", "C"), (good, "A", "A")):
        record(session, p, tech, "received")
        record(session, p, tech, "inspected", grade=grade)
        record(session, p, tech, "tested", passed=True,
               results=[{"check": "vib", "margin": 0.9, "vibration_zone": zone}])
    assert snapshot(session, poor).recommendation != "reuse"
    assert snapshot(session, good).recommendation == "reuse"
    ticket_id = close_with_verdicts(session, settings,
                                    {"part_id": poor.id, "verdict": "approve_reuse", "note": "spectrum clean"},
                                    {"part_id": good.id, "verdict": "require_remanufacture"})
    body = client.get(f"/api/v1/parts/{poor.id}/score", headers=headers(token)).json()
    assert body["recommendation"] == "reuse"
    assert body["inputs"]["scoring"]["verdict"] == "approve_reuse"
    assert f"ticket {ticket_id}" in " ".join(body["reasons"])
    assert snapshot(session, good).recommendation == "remanufacture"
    assert snapshot(session, good).capped


def test_hook_stores_a_snapshot_only_when_an_input_changes(session: Session) -> None:
    tech, _ = make_user(session, "technician")
    part = make_part(session)
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="B")
    first = snapshot(session, part)
    record(session, part, tech, "cleaned")  # changes no input
    assert snapshot(session, part).id == first.id
    ev = record(session, part, tech, "inspected", grade="A")
    second = snapshot(session, part)
    assert second.id != first.id
    assert second.inputs["context"]["trigger_event"] == {"seq": ev.seq, "type": "inspected", "part_id": part.id}
    assert second.inputs["context"]["chain_head"] == ev.hash
    session.expire_all()
    rows = session.exec(select(PartScore).where(PartScore.part_id == part.id).order_by(col(PartScore.id))).all()
    assert [r.is_current for r in rows] == [False] * (len(rows) - 1) + [True]
    # the old snapshot still explains itself with the inputs it came from
    old = scores.explain(session, rows[-2])
    assert old["inputs"]["scoring"]["grade"] == "B"
    assert factor(old, "grade")["explanation"] == "grade B: 0.7"


def test_a_returning_core_is_judged_on_this_visit(session: Session) -> None:
    tech, _ = make_user(session, "technician")
    part = make_part(session)
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="C")
    record(session, part, tech, "tested", passed=True)
    record(session, part, tech, "certified")
    record(session, part, tech, "shipped")
    record(session, part, tech, "received")  # back again: last visit's grade and test no longer count
    scoring = snapshot(session, part).inputs["scoring"]
    assert (scoring["grade"], scoring["test_passed"]) == (None, None)


def test_failures_refit_the_fleet_model_and_rescore_the_type(session: Session) -> None:
    tech, _ = make_user(session, "technician")
    pt = make_part_type(session, design_life_h=20000)
    parts = [make_part(session, part_type_id=pt.id, operating_hours=1000.0 * (i + 1)) for i in range(7)]
    for p in parts:
        record(session, p, tech, "received")
    bystander = parts[6]
    before = snapshot(session, bystander)
    assert before.inputs["context"]["reliability"]["method"] == "design_life"
    for i, p in enumerate(parts[:5]):
        record(session, p, tech, "tested", passed=False, operating_hours=1000.0 * (i + 1) + 500)
        if i < 4:  # still too few failures: the fallback is unchanged, nobody else is rescored
            assert snapshot(session, bystander).id == before.id
    after = snapshot(session, bystander)
    assert after.id != before.id
    assert after.trigger == "fleet_model"
    assert after.inputs["context"]["reliability"]["method"] == "weibull"
    assert after.inputs["context"]["reliability"]["n_failures"] == 5
    model = session.get(ReliabilityModel, pt.id)
    assert model is not None
    assert (model.method, model.n_failures, model.n_censored) == ("weibull", 5, 2)
    assert snapshot(session, parts[4]).trigger == "event"


def test_recompute_endpoint_and_vectorised_scores_match_score_part(client: TestClient, session: Session,
                                                                  app) -> None:  # type: ignore[no-untyped-def]
    tech, tech_token = make_user(session, "technician")
    _, token = make_user(session, "manager")
    for i, (grade, passed, zone) in enumerate([("A", True, "A"), ("B", True, "C"), ("C", False, None),
                                                ("scrap", None, None), (None, True, "D")]):
        p = make_part(session, operating_hours=2000.0 * i)
        record(session, p, tech, "received")
        if grade:
            record(session, p, tech, "inspected", grade=grade, findings=["x"] * i)
        if passed is not None:
            record(session, p, tech, "tested", passed=passed,
                   results=[{"check": "vib", "measured": 1.0 + i, "limit": 6.0} | ({"vibration_zone": zone} if zone
                                                                                   else {})])
    assert client.post("/api/v1/scores/recompute", headers=headers(tech_token)).status_code == 403
    r = client.post("/api/v1/scores/recompute", headers=headers(token))
    assert r.status_code == 200, r.text
    assert (r.json()["parts"], r.json()["changed"]) == (5, 0)  # the hook kept every score current
    assert set(r.json()["timings_s"]) >= {"db_read", "build", "maths", "db_write"}

    other = Settings(database_url="sqlite://", check_schema_on_start=False, ingest_enabled=False,
                     score_weight_grade=0.4, score_weight_test=0.3, score_weight_reliability=0.1,
                     score_weight_generation=0.1, score_weight_economics=0.1, score_threshold_reuse=70)
    app.state.settings = other
    r = client.post("/api/v1/scores/recompute", headers=headers(token))
    assert (r.json()["parts"], r.json()["changed"]) == (5, 5)
    version = r.json()["config_version"]
    assert version == scoring_config(other).version
    assert session.get(ScoreConfig, version).config["weights"]["grade"] == 0.4
    weights = ReuseWeights(grade=0.4, test=0.3, reliability=0.1, generation=0.1, economics=0.1)
    thresholds = ReuseThresholds(reuse=70)
    for snap in session.exec(select(PartScore).where(col(PartScore.is_current))).all():
        assert snap.config_version == version
        assert snap.trigger == "recompute"
        single = score_part(ReuseInputs(**{k: v for k, v in snap.inputs["scoring"].items() if v is not None}),
                            weights, thresholds)
        assert snap.score == pytest.approx(single.score, abs=1e-9)
        assert snap.recommendation == single.recommendation
        assert (snap.hold, snap.capped) == (single.hold, single.capped)
        assert_allclose([f["contribution"] for f in snap.factors], [f.contribution for f in single.factors],
                        atol=1e-9)


def test_history_lists_snapshots_newest_first(client: TestClient, session: Session) -> None:
    tech, token = make_user(session, "technician")
    part = make_part(session)
    record(session, part, tech, "received")
    record(session, part, tech, "inspected", grade="C")
    record(session, part, tech, "inspected", grade="A")
    r = client.get(f"/api/v1/parts/{part.id}/score/history", headers=headers(token))
    assert r.status_code == 200, r.text
    grades = [d["inputs"]["scoring"]["grade"] for d in r.json()["data"]]
    assert grades == ["A", "C", None]
    assert r.json()["count"] == 3


def test_customers_see_only_their_own_parts_scores(client: TestClient, session: Session) -> None:
    _, token = make_user(session, "customer", org="Acme Robotics")
    acme = get_or_create_organisation(session, name="Acme Robotics")
    other = get_or_create_organisation(session, name="Busan Metal")
    session.commit()
    mine, theirs = make_part(session, owner_org_id=acme.id), make_part(session, owner_org_id=other.id)
    assert client.get(f"/api/v1/parts/{mine.id}/score", headers=headers(token)).status_code == 200
    for path in (f"/parts/{theirs.id}/score", f"/parts/{theirs.id}/score/history", f"/parts/{theirs.id}/passport"):
        assert client.get("/api/v1" + path, headers=headers(token)).status_code == 404


def test_cli_recompute(session: Session, engine, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    pt = make_part_type(session)
    parts = [make_part(session, part_type_id=pt.id) for _ in range(3)]  # no events: no snapshot yet
    runner = CliRunner()
    result = runner.invoke(cli_app, ["score", "recompute"], obj={"engine": engine, "settings": settings})
    assert result.exit_code == 0, result.output
    assert "scored 3 parts: 3 new snapshots, 0 unchanged" in result.output
    result = runner.invoke(cli_app, ["score", "recompute", "--all"], obj={"engine": engine, "settings": settings})
    assert result.exit_code == 0, result.output
    assert "scored 3 parts: 0 new snapshots, 3 unchanged; 1 reliability models fitted" in result.output
    assert "db_read" in result.output
    session.expire_all()
    assert all(snapshot(session, p).trigger == "recompute" for p in parts)


def test_inconsistent_weights_are_refused_with_the_setting_named() -> None:
    bad = Settings(database_url="sqlite://", score_weight_grade=0.5)
    with pytest.raises(ValidationError, match="REFURB_SCORE_WEIGHT_.*must sum to 1"):
        scoring_config(bad)


def test_margin_rules() -> None:
    limits = {"temp_K": {"nominal": 20.0}, "run_in_h": {"nominal": 24.0}}
    assert scores.result_margin({"margin": 1.7}, {}) == 1.0
    assert scores.result_margin({"measured": 2.0, "limit": 8.0}, {}) == pytest.approx(0.75)
    assert scores.result_margin({"check": "temp_K", "measured": 50.0, "limit": 80.0}, limits) == pytest.approx(0.5)
    assert scores.result_margin({"measured": 9.0, "limit": 8.0}, {}) == 0.0  # beyond the limit
    assert scores.result_margin({"check": "run_in_h", "measured": 20.0, "limit": 16.0, "comparison": ">="},
                                limits) == pytest.approx(0.5)
    assert scores.result_margin({"measured": 20.0, "limit": 16.0, "comparison": ">="}, {}) is None
    assert scores.result_margin({"measured": "n/a", "limit": 16.0}, {}) is None
    evidence = scores.test_evidence({"passed": True, "vibration_zone": "B", "results": [
        {"check": "a", "measured": 1.0, "limit": 2.0, "vibration_zone": "C"}, "junk"]}, {})
    assert (evidence.zone, evidence.margin, evidence.worst_check) == ("C", 0.5, "a")
    telemetry = scores.test_evidence({"passed": True, "results": [  # the shape telemetry test runs write
        {"check": "j3_velocity_rms_mm_s", "check_type": "vibration_zone", "measured": 1.2, "limit": 2.8,
         "comparison": "<=", "passed": True, "zone": "B"},
        {"check": "run_in_h", "check_type": "run_in", "measured": 17.0, "limit": 16.0, "comparison": ">=",
         "passed": True}]}, {})
    assert telemetry.zone == "B"
    assert telemetry.margin == pytest.approx(1.6 / 2.8)
    assert telemetry.worst_check == "j3_velocity_rms_mm_s"
    assert math.isclose(evidence.margin or 0, 0.5)


def test_a_broken_scoring_configuration_never_blocks_an_event(session: Session, caplog) -> None:  # type: ignore[no-untyped-def]
    tech, _ = make_user(session, "technician")
    part = make_part(session)
    bad = Settings(database_url="sqlite://", score_weight_grade=0.9)
    ev = record(session, part, tech, "received")
    scores.on_part_event(session, part, ev, settings=bad)  # what the hook does with a broken configuration
    assert "not recomputed" in caplog.text
    assert snapshot(session, part).config_version == scoring_config(Settings(database_url="sqlite://")).version
