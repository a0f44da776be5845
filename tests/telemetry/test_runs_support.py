"""Helpers for the test-run tests (no tests here): equip a robot with parts, seed simulated data, run a template."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from refurb.auth import User
from refurb.config import Settings
from refurb.parts import service as parts_service
from refurb.parts.models import EventCreate, EventType, Installation, Part, Robot
from refurb.telemetry import runs_service
from refurb.telemetry.runs import CheckSpec, TestRun, TestRunCreate, TestTemplate, TestTemplateCreate
from refurb.telemetry.simulate import DEFAULT_PROFILE, Fault, SimulationConfig, insert_simulated_run, parse_fault
from tests.factories import make_part, make_part_type

CERTIFICATION_S = 16.5 * 3600
AP_LIMIT_MM = 0.5  # the model's datasheet figures the template is written against
RP_LIMIT_MM = 0.05
_n = itertools.count(1)


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def make_template(session: Session, *, actor: User | None = None, checks: list[CheckSpec] | None = None,
                  **overrides: Any) -> TestTemplate:
    data: dict[str, Any] = {"name": f"KR-16 certification {next(_n)}", "kind": "certification",
                            "robot_model": "KR-16",
                            "checks": checks or runs_service.default_certification_checks(
                                ap_limit_mm=AP_LIMIT_MM, rp_limit_mm=RP_LIMIT_MM)}
    data.update(overrides)
    template = runs_service.create_template(session, TestTemplateCreate(**data), actor=actor)
    session.commit()
    return template


def quick_template(session: Session, **overrides: Any) -> TestTemplate:
    """A one-hour test: run-in of 0.5 h, temperatures, current, vibration and bearings (no poses)."""
    checks = [CheckSpec(type="run_in_hours", limit=0.5), CheckSpec(type="motor_temp_max"),
              CheckSpec(type="motor_temp_rise"), CheckSpec(type="current_ratio"), CheckSpec(type="vibration_zone"),
              CheckSpec(type="bearing_defect")]
    return make_template(session, kind="quick", checks=checks, **overrides)


def install(session: Session, part: Part, robot: Robot, actor: User, position: str | None) -> None:
    parts_service.record_event(session, part, EventCreate(type=EventType.RECEIVED), actor=actor)
    parts_service.record_event(session, part, EventCreate(type=EventType.INSTALLED, robot_id=robot.id,
                                                          position=position), actor=actor)


def equip(session: Session, robot: Robot, actor: User, *, installed_days_ago: float = 7.0) -> dict[str, Part]:
    """Fit a motor and a reducer on every joint (motor types carry the datasheet limits and bearing geometry) and a
    controller board; the robot was assembled ``installed_days_ago`` before the data starts."""
    parts: dict[str, Part] = {}
    for joint in range(1, len(DEFAULT_PROFILE.joints) + 1):
        motor_type = make_part_type(session, category="servo_motor", name=f"J{joint} motor",
                                    test_limits=DEFAULT_PROFILE.test_limits(joint))
        reducer_type = make_part_type(session, category="reducer", name=f"J{joint} reducer")
        parts[f"J{joint}_motor"] = make_part(session, part_type_id=motor_type.id)
        parts[f"J{joint}_reducer"] = make_part(session, part_type_id=reducer_type.id)
        install(session, parts[f"J{joint}_motor"], robot, actor, f"J{joint}")
        install(session, parts[f"J{joint}_reducer"], robot, actor, f"J{joint}-reducer")
    parts["controller"] = make_part(session, part_type_id=make_part_type(session, category="controller_board").id)
    install(session, parts["controller"], robot, actor, None)
    # the robot was assembled before its run-in began (installation records are stamped 'now')
    for inst in session.exec(select(Installation).where(Installation.robot_id == robot.id)):
        inst.installed_at = inst.installed_at - timedelta(days=installed_days_ago)
        session.add(inst)
    session.commit()
    return parts


def simulate(session: Session, robot: Robot, *, faults: tuple[str, ...] = (), duration_s: float = CERTIFICATION_S,
             end_ms: int | None = None, sample_period_s: float = 60.0, capture_every_s: float = 4 * 3600.0,
             pose_cycles: int = 30, seed: int = 1) -> SimulationConfig:
    """Seed a simulated run ending at ``end_ms`` (default a minute ago) straight into the telemetry tables."""
    end_ms = end_ms or int(time.time() * 1000) - 60_000
    config = SimulationConfig(start_ms=end_ms - int(duration_s * 1000), duration_s=duration_s,
                              faults=tuple(parse_fault(f) for f in faults), sample_period_s=sample_period_s,
                              capture_every_s=capture_every_s, pose_cycles=pose_cycles, seed=seed)
    assert robot.id is not None
    insert_simulated_run(session, robot.id, config)
    session.commit()
    return config


def run_template(session: Session, robot: Robot, template: TestTemplate, config: SimulationConfig, actor: User,
                 settings: Settings | None = None) -> TestRun:
    """Start a run over the simulated window and finish it."""
    run = runs_service.start_run(session, TestRunCreate(robot_id=robot.id, template_id=template.id,
                                                        window_start=ms_to_dt(config.start_ms)), actor=actor)
    session.commit()
    runs_service.finish_run(session, run, actor=actor, window_end=ms_to_dt(config.end_ms), settings=settings)
    session.commit()
    return run


def failed_names(session: Session, run: TestRun) -> list[str]:
    return sorted(r.name for r in runs_service.run_checks(session, run) if not r.passed)


def events_tested(session: Session, part: Part) -> list[Any]:
    return [e for e in parts_service.list_events(session, part) if e.type == EventType.TESTED]


__all__ = ["Fault"]
