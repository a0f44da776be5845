"""Test runs judged from simulated data: a healthy robot passes certification, each injected fault fails the right
check on the right part, retests are kept, failure reasons are counted, the run state machine refuses bad steps."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session

from refurb.config import Settings
from refurb.consulting import service as consulting_service
from refurb.consulting.models import LinkKind
from refurb.errors import ConflictError, IllegalTransitionError, ValidationError
from refurb.parts.models import PartStatus, RobotStatus
from refurb.telemetry import runs_service
from refurb.telemetry.runs import RunState, TestRunCreate
from tests.factories import make_robot, make_user
from tests.telemetry.test_runs_support import (
    equip,
    events_tested,
    failed_names,
    make_template,
    ms_to_dt,
    quick_template,
    run_template,
    simulate,
)

HOUR_MS = 3_600_000


def _setup(session: Session):  # type: ignore[no-untyped-def]
    tech = make_user(session, "technician")[0]
    robot = make_robot(session, model="KR-16")
    parts = equip(session, robot, tech)
    return tech, robot, parts


def test_healthy_robot_passes_certification(session: Session, settings: Settings) -> None:
    tech, robot, parts = _setup(session)
    template = make_template(session)
    run = run_template(session, robot, template, simulate(session, robot), tech, settings)

    assert run.state == RunState.PASSED, failed_names(session, run)
    rows = runs_service.run_checks(session, run)
    # run-in, 6 x (temp max, temp rise, current, vibration, BPFO, BPFI), AP, RP
    assert len(rows) == run.checks_total == 1 + 6 * 6 + 2
    by_name = {r.name: r for r in rows}
    assert by_name["run_in_h"].measured >= 16.0
    assert by_name["j3_velocity_rms_mm_s"].details["zone"] == "A"
    assert by_name["j2_temp_rise_k"].details["steady_state"] is True
    assert by_name["pose_rp_mm"].measured < 0.05
    assert by_name["j3_current_ratio"].limit_source.startswith("part type")
    session.refresh(robot)
    assert robot.status == RobotStatus.CERTIFIED
    for key, part in parts.items():
        events = events_tested(session, part)
        assert len(events) == 1, key
        assert events[0].details["passed"] is True
        assert events[0].details["test_run_id"] == run.id
        session.refresh(part)
        assert part.status == PartStatus.TESTED
        assert part.last_test_passed is True
    motor_checks = {r["check"] for r in events_tested(session, parts["J3_motor"])[0].details["results"]}
    assert motor_checks == {"run_in_h", "j3_temp_max_c", "j3_temp_rise_k", "j3_current_ratio",
                            "j3_velocity_rms_mm_s", "j3_bearing_bpfo_db", "j3_bearing_bpfi_db", "pose_ap_mm",
                            "pose_rp_mm"}
    reducer_checks = {r["check"] for r in events_tested(session, parts["J3_reducer"])[0].details["results"]}
    assert reducer_checks == {"run_in_h", "j3_velocity_rms_mm_s", "pose_ap_mm", "pose_rp_mm"}
    controller_checks = {r["check"] for r in events_tested(session, parts["controller"])[0].details["results"]}
    assert controller_checks == {"run_in_h"}


def test_outer_race_fault_fails_only_the_j3_bearing_check(session: Session, settings: Settings) -> None:
    tech, robot, parts = _setup(session)
    template = make_template(session)
    run = run_template(session, robot, template, simulate(session, robot, faults=("outer_race:J3",)), tech, settings)

    assert run.state == RunState.FAILED
    assert failed_names(session, run) == ["j3_bearing_bpfo_db"]
    row = next(r for r in runs_service.run_checks(session, run) if r.name == "j3_bearing_bpfo_db")
    assert row.part_id == parts["J3_motor"].id  # the geometry came from the J3 motor's datasheet
    assert row.measured > 15
    assert row.limit == 6.0
    failed_event = events_tested(session, parts["J3_motor"])[0]
    assert failed_event.details["passed"] is False
    assert [r["check"] for r in failed_event.details["results"] if not r["passed"]] == ["j3_bearing_bpfo_db"]
    for key, part in parts.items():
        if key != "J3_motor":
            assert events_tested(session, part)[0].details["passed"] is True, key
    session.refresh(parts["J3_motor"])
    assert parts["J3_motor"].status == PartStatus.TEST_FAILED
    session.refresh(robot)
    assert robot.status == RobotStatus.IN_REMANUFACTURING
    # a failed certification opens one pre-linked ticket through consulting
    ticket_id = run.summary["ticket_id"]
    tickets = consulting_service.tickets_linked_to(session, kind=LinkKind.TEST_RUN, target_id=run.id)
    assert [t.id for t in tickets] == [ticket_id]
    links = {(link.kind, link.target_id) for link in consulting_service.ticket_links(session, tickets[0])}
    assert ("part", parts["J3_motor"].id) in links
    assert ("robot", robot.id) in links
    assert "j3_bearing_bpfo_db" in tickets[0].description


def test_overheating_motor_fails_its_temperature_checks(session: Session, settings: Settings) -> None:
    tech, robot, parts = _setup(session)
    run = run_template(session, robot, make_template(session), simulate(session, robot, faults=("overheat:J2",)),
                       tech, settings)
    assert failed_names(session, run) == ["j2_temp_max_c", "j2_temp_rise_k"]
    assert events_tested(session, parts["J2_motor"])[0].details["passed"] is False
    assert events_tested(session, parts["J2_reducer"])[0].details["passed"] is True
    assert events_tested(session, parts["J1_motor"])[0].details["passed"] is True


def test_backlash_fails_iso_9283_repeatability(session: Session, settings: Settings) -> None:
    tech, robot, parts = _setup(session)
    run = run_template(session, robot, make_template(session), simulate(session, robot, faults=("backlash",)),
                       tech, settings)
    assert failed_names(session, run) == ["pose_rp_mm"]
    rp = next(r for r in runs_service.run_checks(session, run) if r.name == "pose_rp_mm")
    assert rp.measured > 0.05
    assert set(rp.details["by_pose"]) == {"P1", "P2", "P3", "P4", "P5"}
    # pose figures cannot name a joint: every part of the positioning chain is a suspect, the rest pass
    assert events_tested(session, parts["J4_reducer"])[0].details["passed"] is False
    assert events_tested(session, parts["J1_motor"])[0].details["passed"] is False
    assert events_tested(session, parts["controller"])[0].details["passed"] is True


def test_short_run_fails_run_in_and_missing_data_never_passes(session: Session, settings: Settings) -> None:
    tech, robot, _ = _setup(session)
    config = simulate(session, robot, duration_s=2 * 3600, capture_every_s=3600, pose_cycles=0)
    run = run_template(session, robot, make_template(session), config, tech, settings)
    failed = failed_names(session, run)
    assert "run_in_h" in failed
    assert {"pose_ap_mm", "pose_rp_mm"} <= set(failed)
    ap = next(r for r in runs_service.run_checks(session, run) if r.name == "pose_ap_mm")
    assert ap.measured is None
    assert "not measured" in ap.explanation


def test_retests_are_kept_and_failure_reasons_counted(session: Session, settings: Settings) -> None:
    tech, robot, parts = _setup(session)
    template = quick_template(session)
    now_ms = int(time.time() * 1000)
    first = run_template(session, robot, template, simulate(
        session, robot, faults=("outer_race:J5",), duration_s=3600, end_ms=now_ms - 5 * HOUR_MS,
        sample_period_s=30, capture_every_s=1800, pose_cycles=0), tech, settings)
    assert first.state == RunState.FAILED
    assert first.attempt == 1
    assert failed_names(session, first) == ["j5_bearing_bpfo_db"]
    # after the repair, the retest links to the failed run automatically
    second = run_template(session, robot, template, simulate(
        session, robot, duration_s=3600, end_ms=now_ms - 60_000, sample_period_s=30, capture_every_s=1800,
        pose_cycles=0, seed=2), tech, settings)
    assert second.state == RunState.PASSED
    assert (second.retest_of, second.attempt) == (first.id, 2)
    rows, count = runs_service.list_runs(session, viewer=tech, robot_id=robot.id)
    assert count == 2
    assert [r.id for r in rows] == [second.id, first.id]
    assert [e.details["passed"] for e in events_tested(session, parts["J5_motor"])] == [False, True]

    other = make_robot(session, model="KR-16")
    equip(session, other, tech)
    third = run_template(session, other, template, simulate(
        session, other, faults=("overheat:J2",), duration_s=3600, sample_period_s=30, capture_every_s=1800,
        pose_cycles=0), tech, settings)
    assert failed_names(session, third) == ["j2_temp_rise_k"]  # an hour is too short to pass 80 °C

    reasons = runs_service.failure_reasons(session)
    assert (reasons.runs_finished, reasons.runs_failed) == (3, 2)
    counted = {r.check_type.value: (r.failed_runs, r.by_joint) for r in reasons.reasons}
    assert counted == {"bearing_defect": (1, {"J5": 1}), "motor_temp_rise": (1, {"J2": 1})}
    assert runs_service.failure_reasons(session, template_id=template.id + 1000).runs_finished == 0


def test_run_state_machine(session: Session, settings: Settings) -> None:
    tech, robot, _ = _setup(session)
    template = quick_template(session)
    config = simulate(session, robot, duration_s=3600, sample_period_s=60, capture_every_s=1800, pose_cycles=0)
    run = runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id,
                                                        window_start=ms_to_dt(config.start_ms)), actor=tech)
    session.commit()
    assert runs_service.allowed_steps(run) == ["finish", "abort"]
    session.refresh(robot)
    assert robot.status == RobotStatus.ON_TEST
    with pytest.raises(ConflictError, match="already has test run"):
        runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id), actor=tech)
    with pytest.raises(ValidationError, match="window_end must come after"):
        runs_service.finish_run(session, run, actor=tech, window_end=ms_to_dt(config.start_ms - 1000))
    runs_service.finish_run(session, run, actor=tech, window_end=ms_to_dt(config.end_ms), settings=settings)
    session.commit()
    assert run.state == RunState.PASSED
    session.refresh(robot)
    assert robot.status == RobotStatus.RECEIVED  # a quick test hands the robot back as it was
    with pytest.raises(IllegalTransitionError) as refused:
        runs_service.finish_run(session, run, actor=tech)
    assert refused.value.status_code == 409
    assert refused.value.extra == {"current_state": "passed", "attempted": "finish", "allowed": []}
    with pytest.raises(IllegalTransitionError, match="cannot abort"):
        runs_service.abort_run(session, run, actor=tech)

    aborted = runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id), actor=tech)
    runs_service.abort_run(session, aborted, actor=tech, reason="bench power cut")
    session.commit()
    assert aborted.state == RunState.ABORTED
    assert runs_service.allowed_steps(aborted) == ["retest"]
    with pytest.raises(IllegalTransitionError) as refused:
        runs_service.finish_run(session, aborted, actor=tech)
    assert refused.value.extra["allowed"] == ["retest"]
    with pytest.raises(IllegalTransitionError, match="only failed or aborted runs are retested"):
        runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id,
                                                      retest_of=run.id), actor=tech)
    retest = runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id), actor=tech)
    assert (retest.retest_of, retest.attempt) == (aborted.id, 2)


def test_template_rules(session: Session) -> None:
    manager = make_user(session, "manager")[0]
    make_template(session, name="KR-16 cert", actor=manager)
    with pytest.raises(ConflictError):
        make_template(session, name="KR-16 cert")
    session.rollback()
    with pytest.raises(ValueError, match="needs 'limit'"):
        make_template(session, checks=[{"type": "pose_repeatability"}])
    with pytest.raises(ValidationError, match="beyond joint_count"):
        make_template(session, joint_count=4, checks=[{"type": "motor_temp_max", "joints": ["J6"]}])
    robot = make_robot(session, model="IRB-6700")
    template = make_template(session)
    with pytest.raises(ValidationError, match="is for KR-16 robots"):
        runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id), actor=manager)
