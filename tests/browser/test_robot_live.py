"""In a real headless Chromium: the robot page's live chart grows as samples are stored, and finishing the running
test turns its checks into pass/fail."""

from __future__ import annotations

import json
import time

from sqlmodel import Session

from refurb.telemetry import runs_service
from refurb.telemetry import service as telemetry_service
from refurb.telemetry.parsing import parse_message
from refurb.telemetry.runs import TestRunCreate
from tests.browser.conftest import login
from tests.factories import make_robot, make_user
from tests.telemetry.test_runs_support import equip, ms_to_dt, quick_template, simulate

TRACE_LENGTH = "document.getElementById('chart-temp').data[0].x.length"


def store(engine, serial: str, ts_ms: int, values: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    """Store a telemetry message through the parser and the telemetry service, as the ingest worker does."""
    topic = f"refurb/v1/robots/{serial}/telemetry"
    payload = json.dumps({"ts": ts_ms, "values": values}).encode()
    with Session(engine) as s:
        telemetry_service.store_messages(s, [telemetry_service.Message(
            topic, payload, parse_message(topic, payload, received_at_ms=int(time.time() * 1000)))])
        s.commit()


def test_live_telemetry_arrives_on_the_robot_page(live, page) -> None:  # type: ignore[no-untyped-def]
    with Session(live.engine, expire_on_commit=False) as s:
        tech, _ = make_user(s, "technician", password="bench-pass-1")
        robot = make_robot(s, actor=tech)
        equip(s, robot, tech)
        config = simulate(s, robot, duration_s=3600, sample_period_s=30, capture_every_s=1800, pose_cycles=5,
                          end_ms=int(time.time() * 1000) - 120_000)
        run = runs_service.start_run(s, TestRunCreate(robot_id=robot.id, template_id=quick_template(s).id,
                                                      window_start=ms_to_dt(config.start_ms)), actor=tech)
        s.commit()
    login(page, live.base, tech.username, "bench-pass-1")
    # Not wait_for_url("/scan"): the request session commits the new login token only after the 303 is sent
    # (FastAPI runs yield-dependency exits after the response), so following the redirect at once can race it.
    page.wait_for_load_state()
    page.goto(f"{live.base}/robots/{robot.id}")
    assert page.url == f"{live.base}/robots/{robot.id}"
    page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
    page.wait_for_function("document.getElementById('spectrum-chart').data !== undefined")  # spectra drawn
    before = page.evaluate(TRACE_LENGTH)
    assert before > 50  # the run's history

    now = int(time.time() * 1000)
    for i in range(3):  # new samples while the page is open
        store(live.engine, robot.serial, now + i * 1000,
              {"j1_temp_c": 45.0 + i, "j2_temp_c": 50.0, "j1_current_a": 3.0})
    page.wait_for_function(f"{TRACE_LENGTH} >= {before + 3}", timeout=15_000)
    assert page.evaluate("document.getElementById('chart-temp').data[0].y.slice(-3)") == [45.0, 46.0, 47.0]
    assert page.evaluate("document.getElementById('chart-current').data[0].x.length") > before
    assert "latest sample" in page.inner_text("#live-last")

    # the running test's checks are pending until it is finished; then each turns pass or fail
    assert page.locator("#run-checks .badge.pending").count() >= 6
    page.click("#finish-run")
    page.wait_for_function("['passed', 'failed'].includes(document.querySelector('#run-state .badge').textContent)",
                           timeout=30_000)
    assert page.locator("#run-checks .badge.pending").count() == 0
    verdicts = page.locator("#run-checks .badge").all_inner_texts()
    assert verdicts
    assert set(verdicts) <= {"pass", "fail"}
    assert "checks passed" in page.inner_text("#run-msg")
    assert page.is_hidden("#finish-run")
    assert page.js_errors == []

    with Session(live.engine) as s:
        assert runs_service.get_run(s, run.id).state in ("passed", "failed")
