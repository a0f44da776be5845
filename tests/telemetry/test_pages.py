"""The robot-on-the-test-bench page over HTTP: who may see it, what it shows, and the live stream of new samples."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb import auth
from refurb.auth import User
from refurb.parts.models import Robot
from refurb.telemetry import pages, runs_service
from refurb.telemetry import service as telemetry_service
from refurb.telemetry.models import PoseSample, Sample
from refurb.telemetry.parsing import parse_message
from refurb.telemetry.runs import TestRun, TestRunCreate
from tests.factories import make_robot, make_user
from tests.telemetry.test_runs_support import equip, ms_to_dt, quick_template, simulate

PASSWORD = "bench-pass-1"


@pytest.fixture
def engine(ingest_engine: Engine) -> Engine:
    """A file database (or PostgreSQL): the stream's polls and the test's inserts use separate connections."""
    return ingest_engine


@pytest.fixture(autouse=True)
def quick_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "LIVE_POLL_S", 0.1)
    monkeypatch.setattr(pages, "LIVE_STATUS_S", 0.3)
    monkeypatch.setattr(pages, "LIVE_MAX_S", 20.0)  # a broken test ends instead of hanging


def browser(app: Any, user: User) -> TestClient:
    """A client logged in through the login form (session cookie), like a person at the bench."""
    client = TestClient(app, raise_server_exceptions=False)
    r = client.post("/login", data={"username": user.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    return client


def page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="robot-data">(.*?)</script>', html, re.S)
    assert match, "the page carries its figures as JSON"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def bench_robot(session: Session, *, owner_org_id: int | None = None, **robot: Any) -> tuple[Robot, TestRun]:
    """An equipped robot with two hours of simulated data (J3 outer-race fault) and a running quick test."""
    admin, _ = make_user(session, "admin")
    bot = make_robot(session, owner_org_id=owner_org_id, actor=admin, **robot)
    equip(session, bot, admin)
    config = simulate(session, bot, faults=("outer_race:J3",), duration_s=2 * 3600, sample_period_s=30,
                      capture_every_s=3600, pose_cycles=5)
    run = runs_service.start_run(session, TestRunCreate(robot_id=bot.id, template_id=quick_template(session).id,
                                                        window_start=ms_to_dt(config.start_ms)), actor=admin)
    session.commit()
    return bot, run


def store(engine: Engine, serial: str, ts_ms: int, values: dict[str, float]) -> None:
    """Store one telemetry message the way the ingest worker does (parser, then insert-or-ignore)."""
    topic = f"refurb/v1/robots/{serial}/telemetry"
    payload = json.dumps({"ts": ts_ms, "values": values}).encode()
    with Session(engine) as s:
        telemetry_service.store_messages(s, [telemetry_service.Message(
            topic, payload, parse_message(topic, payload, received_at_ms=int(time.time() * 1000)))])
        s.commit()


def events(lines: Iterator[str], limit: int = 50) -> Iterator[dict[str, Any]]:
    """Parse server-sent events from a line iterator: {"event", "id", "data"} (comments skipped)."""
    event: dict[str, Any] = {}
    for _, line in zip(range(limit * 10), lines, strict=False):
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


def test_the_page_shows_the_bench_to_staff_and_the_owning_customer(app: Any, session: Session) -> None:
    tech, _ = make_user(session, "technician", password=PASSWORD)
    owner, _ = make_user(session, "customer", org="Acme Robotics", password=PASSWORD)
    other, _ = make_user(session, "customer", org="Busan Metal Works", password=PASSWORD)
    robot, run = bench_robot(session, owner_org_id=owner.organisation_id, manufacturer="<script>alert(1)</script>")

    r = browser(app, tech).get(f"/robots/{robot.id}")
    assert r.status_code == 200
    html = r.text
    assert robot.serial in html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert f'href="/robots/{robot.id}/certificate"' in html
    assert 'src="/static/vendor/plotly.min.js"' in html
    assert "cdn" not in html.lower()
    assert 'id="finish-run"' in html
    assert 'id="start-form"' in html
    data = page_data(html)

    # live charts: both figures, one trace per joint, times in epoch ms, the stream picks up where they end
    temp, current = data["charts"]
    assert temp["keys"] == [f"j{n}_temp_c" for n in range(1, 7)]
    assert current["keys"] == [f"j{n}_current_a" for n in range(1, 7)]
    assert [t["name"] for t in temp["figure"]["data"]] == [f"J{n}" for n in range(1, 7)]
    assert temp["points"] > 6 * 100
    assert isinstance(temp["figure"]["data"][0]["x"][0], int)
    assert 20 < temp["figure"]["data"][0]["y"][-1] < 80
    assert temp["figure"]["layout"]["shapes"][0]["y0"] == 80.0  # the motors' max_temp_c
    assert data["live"]["url"] == f"/robots/{robot.id}/live"
    assert data["live"]["keys"] == temp["keys"] + current["keys"]
    assert abs(data["live"]["since"] - (time.time() * 1000 - pages.LIVE_OVERLAP_MS)) < 60_000

    # the running test with its planned checks
    assert data["run"]["id"] == run.id
    assert data["run"]["state"] == "running"
    assert {c["type"] for c in data["planned"]} >= {"run_in_hours", "bearing_defect"}

    # ISO 9283: five poses with AP and RP
    assert [p["pose"] for p in data["poses"]["table"]] == ["P1", "P2", "P3", "P4", "P5"]
    assert all(0 < p["ap_mm"] < 1 and 0 < p["rp_mm"] < 0.2 and p["n"] == 5 for p in data["poses"]["table"])
    assert data["poses"]["figure"]["data"][0]["name"].startswith("P1 · AP ")

    # spectra with the bearing defect frequencies of the motors' geometry at the measured shaft speed
    spectra = {s["joint"]: s for s in data["spectra"]}
    assert sorted(spectra) == [f"J{n}" for n in range(1, 7)]
    j3 = spectra["J3"]
    assert set(j3["markers"]) == {"FTF", "BSF", "BPFO", "BPFI"}
    assert j3["markers"]["BPFO"] == pytest.approx(3.5848 * j3["shaft_hz"], rel=1e-3)  # 6205: BPFO = 3.585 x
    assert j3["defects"]["BPFO"]["detected"] is True  # the injected outer-race fault
    assert spectra["J1"]["defects"]["BPFO"]["detected"] is False
    assert j3["zone"] == "A"
    texts = [a["text"] for a in j3["figure"]["layout"]["annotations"]]
    assert any(t.startswith("BPFO ") for t in texts)

    # the parts installed now link to their passports
    assert re.search(r'href="/parts/\d+"', html)

    # the owner sees the page, without the run buttons; another customer does not learn the robot exists
    owner_page = browser(app, owner).get(f"/robots/{robot.id}")
    assert owner_page.status_code == 200
    assert 'id="finish-run"' not in owner_page.text
    assert 'id="start-form"' not in owner_page.text
    assert browser(app, other).get(f"/robots/{robot.id}", headers={"accept": "text/html"}).status_code == 404
    anonymous = TestClient(app).get(f"/robots/{robot.id}", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")


def test_a_finished_run_shows_its_verdicts(app: Any, session: Session) -> None:
    tech, _ = make_user(session, "technician", password=PASSWORD)
    robot, run = bench_robot(session)
    runs_service.finish_run(session, run, actor=tech)
    session.commit()
    data = page_data(browser(app, tech).get(f"/robots/{robot.id}").text)
    assert data["run"]["state"] == "failed"  # J3's bearing
    failed = {c["name"] for c in data["run"]["checks"] if not c["passed"]}
    assert "j3_bearing_bpfo_db" in failed
    assert data["live"]["open"] is False


def test_pose_names_cannot_break_out_of_the_page_data(app: Any, session: Session) -> None:
    tech, _ = make_user(session, "technician", password=PASSWORD)
    robot = make_robot(session)
    now = int(time.time() * 1000)
    evil = "</script><script>alert(1)</script>"
    telemetry_service.insert_ignore(session, PoseSample, [
        {"robot_id": robot.id, "ts_ms": now - 60_000 + i, "pose": evil, "cycle": i, "commanded_x_mm": 0.0,
         "commanded_y_mm": 0.0, "commanded_z_mm": 0.0, "attained_x_mm": 0.01 * i, "attained_y_mm": 0.0,
         "attained_z_mm": 0.0, "orientation": None, "received_at_ms": now} for i in range(3)])
    session.commit()
    html = browser(app, tech).get(f"/robots/{robot.id}").text
    assert "<script>alert(1)</script>" not in html
    assert page_data(html)["poses"]["table"][0]["pose"] == evil


def test_the_live_stream_sends_new_samples_as_data_lines(app: Any, session: Session, engine: Engine) -> None:
    tech, _ = make_user(session, "technician", password=PASSWORD)
    robot = make_robot(session)
    since = int(time.time() * 1000) - 10_000
    store(engine, robot.serial, since - 1000, {"j1_temp_c": 30.0})  # before the cursor: already on the chart
    store(engine, robot.serial, since + 1000, {"j1_temp_c": 41.5, "j1_current_a": 2.25, "other_key": 1.0})
    store(engine, robot.serial, since + 2000, {"j1_temp_c": 41.75})
    client = browser(app, tech)
    url = f"/robots/{robot.id}/live?keys=j1_temp_c,j1_current_a&since={since}"
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        stream = events(r.iter_lines())
        first = next(e for e in stream if "event" not in e)
        assert json.loads(first["data"])["series"] == {
            "j1_temp_c": {"ts": [since + 1000, since + 2000], "v": [41.5, 41.75]},
            "j1_current_a": {"ts": [since + 1000], "v": [2.25]}}
        assert json.loads(first["id"]) == {"j1_temp_c": since + 2000, "j1_current_a": since + 2000}
        status = next(e for e in stream if e.get("event") == "status")
        assert json.loads(status["data"])["robot_status"] == "received"

        store(engine, robot.serial, since + 3000, {"j1_temp_c": 42.0})  # arrives while the page is open
        second = next(e for e in stream if "event" not in e)
        assert json.loads(second["data"])["series"] == {"j1_temp_c": {"ts": [since + 3000], "v": [42.0]}}

    # the browser reconnects with the last id it saw: nothing is sent twice
    headers = {"Last-Event-ID": second["id"]}
    store(engine, robot.serial, since + 4000, {"j1_current_a": 2.5})
    with client.stream("GET", url, headers=headers) as r:
        resumed = next(e for e in events(r.iter_lines()) if "event" not in e)
    assert json.loads(resumed["data"])["series"] == {"j1_current_a": {"ts": [since + 4000], "v": [2.5]}}


def test_the_live_stream_needs_the_page_session_and_honours_ownership(app: Any, session: Session) -> None:
    owner, _ = make_user(session, "customer", org="Acme Robotics", password=PASSWORD)
    other, _ = make_user(session, "customer", org="Gimhae Auto Parts", password=PASSWORD)
    robot = make_robot(session, owner_org_id=owner.organisation_id)
    url = f"/robots/{robot.id}/live"
    assert TestClient(app).get(url).status_code == 401
    assert browser(app, other).get(url).status_code == 404
    assert browser(app, owner).get(url + "?keys=j1_temp_c,bad%20key").status_code == 422
    client = browser(app, owner)
    with client.stream("GET", url) as r:
        assert r.status_code == 200
        stream = events(r.iter_lines())
        status = next(e for e in stream if e.get("event") == "status")
        assert json.loads(status["data"])["connectivity"]["state"] == "unknown"
        auth.revoke_token(session, client.cookies["refurb_session"])  # logging out elsewhere ends the stream
        session.commit()
        gone = next(e for e in stream if e.get("event") == "gone")
        assert "log in again" in json.loads(gone["data"])["detail"]


def test_polling_is_bounded_and_a_silent_key_never_holds_the_others_back(session: Session) -> None:
    robot = make_robot(session)
    rows = [{"robot_id": robot.id, "key": "a", "ts_ms": ts, "value": float(ts), "text": None, "seq": None,
             "received_at_ms": 0} for ts in range(1, 31)]
    rows += [{"robot_id": robot.id, "key": "b", "ts_ms": ts, "value": -float(ts), "text": None, "seq": None,
              "received_at_ms": 0} for ts in range(1, 4)]  # b stops reporting after ts 3
    telemetry_service.insert_ignore(session, Sample, rows)
    session.commit()
    cursors = {"a": 0, "b": 0}
    sent: dict[str, list[int]] = {"a": [], "b": []}
    for _ in range(20):
        series, more = pages.poll_samples(session, robot.id, cursors, batch_rows=4)
        for key, got in series.items():
            assert len(got["ts"]) <= 4
            sent[key] += got["ts"]
        if not more:
            break
    assert not more
    assert sent == {"a": list(range(1, 31)), "b": [1, 2, 3]}
    assert cursors == {"a": 30, "b": 30}
    assert pages.poll_samples(session, robot.id, cursors, batch_rows=4) == ({}, False)
