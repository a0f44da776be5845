"""Test runs and alarms: templates, the run state machine, judging a run's data window with the pure checks of
``telemetry/analysis.py``, 'tested' events on the parts, failure-reason counts, and alarm rules on live samples.

Functions take the session first and never commit (docs/api.md (Test runs) explains the checks, their defaults and
which part each check lands on).
"""

from __future__ import annotations

import fnmatch
import logging
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from refurb.auth import User, customer_org_scope
from refurb.config import Settings
from refurb.db import count_rows, utcnow
from refurb.errors import ConflictError, IllegalTransitionError, NotFoundError, RefurbError, ValidationError
from refurb.parts import service as parts_service
from refurb.parts.models import (
    EventCreate,
    EventType,
    Installation,
    Part,
    PartCategory,
    PartType,
    Robot,
    RobotStatus,
)
from refurb.telemetry import analysis
from refurb.telemetry import service as telemetry_service
from refurb.telemetry.analysis import Comparison, MachineClass, VibrationZone
from refurb.telemetry.models import Sample, WaveformBlock
from refurb.telemetry.runs import (
    JOINT_CHECKS,
    Alarm,
    AlarmRule,
    AlarmRuleCreate,
    AlarmState,
    BearingGeometry,
    CheckResultPublic,
    CheckSpec,
    CheckType,
    FailureReason,
    FailureReasonsPublic,
    RunCheckResult,
    RunState,
    TestKind,
    TestRun,
    TestRunCreate,
    TestRunPublic,
    TestTemplate,
    TestTemplateCreate,
    current_key,
    speed_key,
    temp_key,
    vibration_channel,
)

log = logging.getLogger(__name__)

# --- defaults (docs/api.md (Test runs) justifies each) --------------------------------------------------------------

DEFAULT_RUN_IN_H = 16.0  # standards.md §7: functional run-in of at least 16 hours before certification
DEFAULT_RUN_IN_MAX_GAP_S = 120.0  # a gap longer than this (robot stopped or not reporting) is not run-in time
DEFAULT_MAX_TEMP_C = 80.0  # motor housing; convention, replaced by the part type's max_temp_c
DEFAULT_MAX_TEMP_RISE_K = 45.0  # over the start temperature; convention, replaced by max_temp_rise_k
DEFAULT_MAX_CURRENT_RATIO = 1.0  # RMS current over the run <= rated (continuous, S1) current
DEFAULT_MACHINE_CLASS = MachineClass.ISO10816_1_CLASS_I  # standards.md §3: joint motors are < 15 kW
DEFAULT_MAX_ZONE = VibrationZone.B  # ISO 10816 zone B: unrestricted long-term operation
DEFAULT_DEFECTS = ("bpfo", "bpfi")
DEFAULT_THRESHOLD_DB = 6.0  # envelope line 6 dB over the local median background (Randall & Antoni 2011)
DEFAULT_MAX_CAPTURES = 12
SPEED_WINDOW_MS = 60_000  # shaft speed samples this close to a vibration capture describe it
MAX_WINDOW_MS = 31 * 86_400_000
MAX_FUTURE_MS = 5 * 60_000  # as the MQTT parser: device clocks may run a little ahead

# Which joint checks concern a part at that joint, by category (a part type may list its own in test_limits.checks).
CHECKS_BY_CATEGORY: dict[PartCategory, frozenset[CheckType]] = {
    PartCategory.SERVO_MOTOR: frozenset(JOINT_CHECKS),
    PartCategory.REDUCER: frozenset({CheckType.VIBRATION_ZONE, CheckType.BEARING_DEFECT}),
    PartCategory.BEARING: frozenset({CheckType.VIBRATION_ZONE, CheckType.BEARING_DEFECT}),
    PartCategory.BRAKE: frozenset({CheckType.MOTOR_TEMP_MAX, CheckType.MOTOR_TEMP_RISE, CheckType.CURRENT_RATIO}),
    PartCategory.DRIVE: frozenset({CheckType.CURRENT_RATIO}),
}
# Robot-level pose figures cannot say which joint lost accuracy: they land on every part of the positioning chain.
POSITIONING_CATEGORIES = frozenset({PartCategory.SERVO_MOTOR, PartCategory.REDUCER, PartCategory.ENCODER})

_UNITS = {CheckType.RUN_IN_HOURS: "h", CheckType.MOTOR_TEMP_MAX: "°C", CheckType.MOTOR_TEMP_RISE: "K",
          CheckType.CURRENT_RATIO: "", CheckType.VIBRATION_ZONE: "mm/s", CheckType.BEARING_DEFECT: "dB",
          CheckType.POSE_ACCURACY: "mm", CheckType.POSE_REPEATABILITY: "mm"}
_JOINT_POSITION_RE = re.compile(r"^\s*[jJ]([1-9])(?![0-9])")


def default_certification_checks(*, ap_limit_mm: float, rp_limit_mm: float) -> list[CheckSpec]:
    """The checks of a full certification with the documented defaults; AP/RP come from the model's datasheet."""
    return [CheckSpec(type=CheckType.RUN_IN_HOURS), CheckSpec(type=CheckType.MOTOR_TEMP_MAX),
            CheckSpec(type=CheckType.MOTOR_TEMP_RISE), CheckSpec(type=CheckType.CURRENT_RATIO),
            CheckSpec(type=CheckType.VIBRATION_ZONE), CheckSpec(type=CheckType.BEARING_DEFECT),
            CheckSpec(type=CheckType.POSE_ACCURACY, limit=ap_limit_mm),
            CheckSpec(type=CheckType.POSE_REPEATABILITY, limit=rp_limit_mm)]


# --- templates ---------------------------------------------------------------------------------------------------


def create_template(session: Session, data: TestTemplateCreate, *, actor: User | None = None) -> TestTemplate:
    """Add a test template (its name is unique; a part-type template names an existing part type)."""
    if session.exec(select(TestTemplate).where(TestTemplate.name == data.name)).first():
        raise ConflictError(f"test template '{data.name}' already exists")
    if data.part_type_id is not None:
        parts_service.get_part_type(session, data.part_type_id)
    for index, check in enumerate(data.checks):
        for joint in check.joints or []:
            if int(joint[1:]) > data.joint_count:
                raise ValidationError(f"checks[{index}].joints: {joint} is beyond joint_count={data.joint_count}")
    template = TestTemplate(**data.model_dump(exclude={"checks"}),
                            checks=[c.model_dump(mode="json", exclude_none=True) for c in data.checks],
                            created_by_id=actor.id if actor else None)
    session.add(template)
    session.flush()
    return template


def get_template(session: Session, template_id: int) -> TestTemplate:
    """Return a template or raise NotFoundError."""
    template = session.get(TestTemplate, template_id)
    if template is None:
        raise NotFoundError(f"test template {template_id} not found")
    return template


def list_templates(session: Session, *, robot_model: str | None = None, kind: TestKind | None = None,
                   offset: int = 0, limit: int = 100) -> tuple[list[TestTemplate], int]:
    """Return a page of templates, newest first."""
    query = select(TestTemplate)
    if robot_model:
        query = query.where(or_(col(TestTemplate.robot_model) == robot_model, col(TestTemplate.robot_model).is_(None)))
    if kind:
        query = query.where(TestTemplate.kind == kind)
    rows = list(session.exec(query.order_by(col(TestTemplate.id).desc()).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


# --- the run state machine ---------------------------------------------------------------------------------------


def allowed_steps(run: TestRun) -> list[str]:
    """Steps allowed on a run now: a running run can be finished or aborted; a failed or aborted one retested."""
    if run.state == RunState.RUNNING:
        return ["finish", "abort"]
    if run.state in (RunState.FAILED, RunState.ABORTED):
        return ["retest"]
    return []


def _refuse(run: TestRun, attempted: str, reason: str = "") -> IllegalTransitionError:
    return IllegalTransitionError(subject=f"test run {run.id}", current=str(run.state), attempted=attempted,
                                  allowed=allowed_steps(run), reason=reason)


def _to_ms(at: datetime, name: str) -> int:
    if at.tzinfo is None:
        raise ValidationError(f"{name} must carry a time zone, e.g. 2026-01-31T09:00:00+09:00 or ...Z")
    return int(at.timestamp() * 1000)


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def start_run(session: Session, data: TestRunCreate, *, actor: User | None = None,
              now: datetime | None = None) -> TestRun:
    """Start a run of a template on a robot (one running run per robot); the robot goes on test."""
    now = now or utcnow()
    robot = parts_service.get_robot(session, data.robot_id)
    template = get_template(session, data.template_id)
    if not template.active:
        raise ConflictError(f"test template '{template.name}' is no longer active")
    if template.robot_model and template.robot_model != robot.model:
        raise ValidationError(f"template '{template.name}' is for {template.robot_model} robots; robot "
                              f"{robot.serial} is a {robot.model}")
    if robot.status in (RobotStatus.SHIPPED, RobotStatus.SCRAPPED):
        raise ConflictError(f"robot {robot.serial} is {robot.status}; it cannot be tested")
    running = session.exec(select(TestRun).where(TestRun.robot_id == robot.id,
                                                 TestRun.state == RunState.RUNNING)).first()
    if running is not None:
        raise ConflictError(f"robot {robot.serial} already has test run {running.id} running; finish or abort it "
                            "first", extra={"running_run_id": running.id})
    now_ms = int(now.timestamp() * 1000)
    start_ms = now_ms if data.window_start is None else _to_ms(data.window_start, "window_start")
    if start_ms > now_ms + MAX_FUTURE_MS:
        raise ValidationError("window_start must not lie in the future")
    if now_ms - start_ms > MAX_WINDOW_MS:
        raise ValidationError("window_start lies more than 31 days in the past")
    previous = _previous_attempt(session, robot, template, data.retest_of)
    run = TestRun(robot_id=robot.id, template_id=template.id, kind=template.kind, started_at=now,  # type: ignore[arg-type]
                  window_start_ms=start_ms, retest_of=previous.id if previous else None,
                  attempt=previous.attempt + 1 if previous else 1, started_by_id=actor.id if actor else None,
                  spec={"template": template.name, "joint_count": template.joint_count,
                        "part_type_id": template.part_type_id, "checks": template.checks},
                  robot_status_before=str(robot.status), note=data.note)
    session.add(run)
    parts_service.set_robot_status(session, robot, RobotStatus.ON_TEST)
    session.flush()
    return run


def _previous_attempt(session: Session, robot: Robot, template: TestTemplate, retest_of: int | None
                      ) -> TestRun | None:
    if retest_of is not None:
        previous = session.get(TestRun, retest_of)
        if previous is None or previous.robot_id != robot.id:
            raise ValidationError(f"retest_of: run {retest_of} is not a run of robot {robot.serial}")
        if previous.state not in (RunState.FAILED, RunState.ABORTED):
            raise _refuse(previous, "retest", "only failed or aborted runs are retested")
        return previous
    last = session.exec(select(TestRun).where(TestRun.robot_id == robot.id, TestRun.template_id == template.id)
                        .order_by(col(TestRun.id).desc())).first()
    return last if last is not None and last.state in (RunState.FAILED, RunState.ABORTED) else None


def get_run(session: Session, run_id: int, *, viewer: User | None = None) -> TestRun:
    """Return a run the viewer may see (customers: their own robots' runs), else NotFoundError."""
    run = session.get(TestRun, run_id)
    if run is None:
        raise NotFoundError(f"test run {run_id} not found")
    if viewer is not None and customer_org_scope(viewer) is not None:
        try:
            parts_service.get_robot(session, run.robot_id, viewer=viewer)
        except NotFoundError:
            raise NotFoundError(f"test run {run_id} not found") from None
    return run


def list_runs(session: Session, *, viewer: User, robot_id: int | None = None, state: RunState | None = None,
              template_id: int | None = None, offset: int = 0, limit: int = 100) -> tuple[list[TestRun], int]:
    """Return a page of runs the viewer may see, newest first (retests are separate runs)."""
    query = select(TestRun)
    scope = customer_org_scope(viewer)
    if scope is not None:
        query = query.join(Robot, col(Robot.id) == TestRun.robot_id).where(Robot.owner_org_id == scope)
    if robot_id is not None:
        query = query.where(TestRun.robot_id == robot_id)
    if state is not None:
        query = query.where(TestRun.state == state)
    if template_id is not None:
        query = query.where(TestRun.template_id == template_id)
    rows = list(session.exec(query.order_by(col(TestRun.id).desc()).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def run_checks(session: Session, run: TestRun) -> list[RunCheckResult]:
    """Return a run's check results in evaluation order."""
    return list(session.exec(select(RunCheckResult).where(RunCheckResult.run_id == run.id)
                             .order_by(col(RunCheckResult.id))))


def run_public(session: Session, run: TestRun, *, with_checks: bool = True) -> TestRunPublic:
    """Shape a run for the API, with its check results and the steps allowed now."""
    checks = [CheckResultPublic.model_validate(c) for c in run_checks(session, run)] if with_checks else []
    return TestRunPublic.model_validate(run, update={"allowed": allowed_steps(run), "checks": checks})


def abort_run(session: Session, run: TestRun, *, actor: User | None = None, reason: str = "",
              now: datetime | None = None) -> TestRun:
    """Abort a running run: no verdict, no events; the robot returns to its status before the run."""
    if run.state != RunState.RUNNING:
        raise _refuse(run, "abort")
    now = now or utcnow()
    run.state = RunState.ABORTED
    run.finished_at = now
    run.window_end_ms = int(now.timestamp() * 1000)
    run.finished_by_id = actor.id if actor else None
    run.summary = {"aborted": True, "reason": reason}
    session.add(run)
    robot = parts_service.get_robot(session, run.robot_id)
    parts_service.set_robot_status(session, robot, RobotStatus(run.robot_status_before or RobotStatus.RECEIVED))
    session.flush()
    return run


# --- parts in the window -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class PartAtJoint:
    part: Part
    part_type: PartType
    joint: str | None
    installed_fraction: float
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def category(self) -> PartCategory:
        return PartCategory(self.part_type.category)


def _joint_of(position: str | None) -> str | None:
    match = _JOINT_POSITION_RE.match(position or "")
    return f"J{match.group(1)}" if match else None


def parts_in_window(session: Session, robot_id: int, *, start_ms: int, end_ms: int) -> list[PartAtJoint]:
    """Parts installed in the robot (directly or inside an installed part) at any time in the window, with the
    joint each serves: the installation position (J1..J9), inherited from the enclosing part, else the part type's
    ``test_limits.joint``."""
    start, end = _ms_to_dt(start_ms), _ms_to_dt(end_ms)
    span = max(end_ms - start_ms, 1)

    def overlapping(where: Any) -> list[Installation]:
        return list(session.exec(select(Installation).where(
            where, Installation.installed_at <= end,
            or_(col(Installation.removed_at).is_(None), col(Installation.removed_at) > start))
            .order_by(col(Installation.installed_at))))

    found: dict[int, tuple[Installation, str | None]] = {}
    frontier = [(inst, _joint_of(inst.position)) for inst in overlapping(Installation.robot_id == robot_id)]
    while frontier:
        next_frontier = []
        for inst, joint in frontier:
            if inst.part_id in found:
                continue
            found[inst.part_id] = (inst, joint)
            for child in overlapping(Installation.parent_part_id == inst.part_id):
                next_frontier.append((child, _joint_of(child.position) or joint))
        frontier = next_frontier
    out = []
    for part_id, (inst, joint) in found.items():
        part = session.get(Part, part_id)
        if part is None:
            continue
        part_type = parts_service.get_part_type(session, part.part_type_id)
        limits = dict(part_type.test_limits or {})
        lo = max(start_ms, int(inst.installed_at.timestamp() * 1000))
        hi = min(end_ms, int(inst.removed_at.timestamp() * 1000)) if inst.removed_at else end_ms
        out.append(PartAtJoint(part=part, part_type=part_type, joint=joint or _joint_of(limits.get("joint")),
                               installed_fraction=round(max(0, hi - lo) / span, 4), limits=limits))
    return sorted(out, key=lambda p: (p.joint or "~", p.part.id or 0))


def _checks_for(entry: PartAtJoint) -> frozenset[CheckType]:
    listed = entry.limits.get("checks")
    if isinstance(listed, list):
        known = {t.value for t in CheckType}
        return frozenset(CheckType(c) for c in listed if c in known)
    joint_checks = CHECKS_BY_CATEGORY.get(entry.category, frozenset())
    robot_checks = {CheckType.RUN_IN_HOURS}
    if entry.category in POSITIONING_CATEGORIES:
        robot_checks |= {CheckType.POSE_ACCURACY, CheckType.POSE_REPEATABILITY}
    return joint_checks | robot_checks


def concerns(entry: PartAtJoint, row: RunCheckResult) -> bool:
    """Whether a check result belongs in this part's 'tested' event (docs/api.md (Test runs), "Which part")."""
    if CheckType(row.check_type) not in _checks_for(entry):
        return False
    if row.joint is None:
        return True  # robot-level
    if row.joint != entry.joint:
        return False
    return row.part_id is None or row.part_id == entry.part.id


# --- evaluation --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Evaluated:
    """One evaluated check before it is stored."""

    check_type: CheckType
    result: analysis.CheckResult
    joint: str | None = None
    part_id: int | None = None
    unit: str = ""
    limit_source: str = "default"
    details: dict[str, Any] = field(default_factory=dict)


def _clean(value: Any) -> Any:
    """Make a value JSON-safe: non-finite floats become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _judge(check_type: CheckType, name: str, measured: float | None, limit: float, comparison: Comparison, *,
           joint: str | None = None, part_id: int | None = None, limit_source: str = "default",
           details: dict[str, Any] | None = None, missing: str | None = None) -> Evaluated:
    unit = _UNITS[check_type]
    result = analysis.evaluate_limit(name, measured, limit, comparison, unit=unit)
    if missing and not result.passed and result.measured is None:
        result = analysis.CheckResult(name=result.name, measured=None, limit=result.limit,
                                      comparison=result.comparison, passed=False,
                                      explanation=f"{name} was not measured ({missing}): fail")
    return Evaluated(check_type=check_type, result=result, joint=joint, part_id=part_id, unit=unit,
                     limit_source=limit_source, details=details or {})


def _strictest(candidates: Sequence[tuple[float, str]], comparison: Comparison) -> tuple[float, str]:
    """Pick the strictest limit (smallest for <=, largest for >=) with its source."""
    if comparison in (Comparison.AT_MOST, Comparison.BELOW):
        return min(candidates, key=lambda c: c[0])
    return max(candidates, key=lambda c: c[0])


def _limit(spec: CheckSpec, default: float, parts: Sequence[PartAtJoint], key: str,
           comparison: Comparison = Comparison.AT_MOST) -> tuple[float, str]:
    candidates: list[tuple[float, str]] = []
    if spec.limit is not None:
        candidates.append((float(spec.limit), "template"))
    for entry in parts:
        value = entry.limits.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            candidates.append((float(value), f"part type {entry.part_type.part_number} ({key})"))
    return _strictest(candidates, comparison) if candidates else (default, "default")


@dataclass(slots=True)
class RunData:
    """The telemetry a run needs, loaded once."""

    robot_id: int
    start_ms: int
    end_ms: int
    series: dict[str, tuple[np.ndarray, np.ndarray]]


def _sample_times(session: Session, robot_id: int, start_ms: int, end_ms: int) -> np.ndarray:
    rows = session.exec(select(Sample.ts_ms).distinct().where(
        Sample.robot_id == robot_id, col(Sample.ts_ms) >= start_ms, col(Sample.ts_ms) <= end_ms))
    return np.fromiter(rows, dtype=np.float64)


def evaluate_run(session: Session, robot: Robot, *, spec: dict[str, Any], start_ms: int, end_ms: int,
                 parts: Sequence[PartAtJoint]) -> list[Evaluated]:
    """Judge every check of a template snapshot against the robot's data in [start_ms, end_ms]."""
    assert robot.id is not None
    joint_count = int(spec.get("joint_count", 6))
    checks = [CheckSpec.model_validate(c) for c in spec.get("checks", [])]
    wanted_types = {c.type for c in checks}
    keys: list[str] = []
    for n in range(1, joint_count + 1):
        if wanted_types & {CheckType.MOTOR_TEMP_MAX, CheckType.MOTOR_TEMP_RISE}:
            keys.append(temp_key(n))
        if CheckType.CURRENT_RATIO in wanted_types:
            keys.append(current_key(n))
        if CheckType.BEARING_DEFECT in wanted_types:
            keys.append(speed_key(n))
    # the run window is closed [start, end]; the telemetry queries take [start, end)
    series = telemetry_service.scalar_series(session, robot.id, keys, start_ms, end_ms + 1) if keys else {}
    data = RunData(robot_id=robot.id, start_ms=start_ms, end_ms=end_ms, series=series)
    by_joint: dict[str, list[PartAtJoint]] = {}
    for entry in parts:
        if entry.joint:
            by_joint.setdefault(entry.joint, []).append(entry)
    out: list[Evaluated] = []
    vibration_specs = [c for c in checks if c.type in (CheckType.VIBRATION_ZONE, CheckType.BEARING_DEFECT)]
    for check in checks:
        if check.type == CheckType.RUN_IN_HOURS:
            out.append(_check_run_in(session, check, data))
        elif check.type in (CheckType.POSE_ACCURACY, CheckType.POSE_REPEATABILITY):
            out.append(_check_pose(session, check, data))
        elif check.type in (CheckType.MOTOR_TEMP_MAX, CheckType.MOTOR_TEMP_RISE, CheckType.CURRENT_RATIO):
            for joint in check.joints or [f"J{n}" for n in range(1, joint_count + 1)]:
                out.append(_check_scalar_joint(check, data, joint, by_joint.get(joint, [])))
    if vibration_specs:
        joints = sorted({j for c in vibration_specs for j in (c.joints or [f"J{n}" for n in
                                                                            range(1, joint_count + 1)])},
                        key=lambda j: int(j[1:]))
        for joint in joints:
            specs = [c for c in vibration_specs if joint in (c.joints or [f"J{n}" for n in
                                                                          range(1, joint_count + 1)])]
            out.extend(_check_vibration_joint(session, specs, data, joint, by_joint.get(joint, [])))
    return out


def _check_run_in(session: Session, check: CheckSpec, data: RunData) -> Evaluated:
    gap_s = check.max_gap_s or DEFAULT_RUN_IN_MAX_GAP_S
    hours = analysis.run_in_hours(_sample_times(session, data.robot_id, data.start_ms, data.end_ms), max_gap_s=gap_s)
    limit, source = (float(check.limit), "template") if check.limit is not None else (DEFAULT_RUN_IN_H, "default")
    return _judge(CheckType.RUN_IN_HOURS, "run_in_h", round(hours, 4), limit, Comparison.AT_LEAST,
                  limit_source=source, details={"max_gap_s": gap_s,
                                                "window_h": round((data.end_ms - data.start_ms) / 3.6e6, 4)})


def _check_pose(session: Session, check: CheckSpec, data: RunData) -> Evaluated:
    accuracy = check.type == CheckType.POSE_ACCURACY
    name = "pose_ap_mm" if accuracy else "pose_rp_mm"
    assert check.limit is not None
    rows = telemetry_service.poses(session, data.robot_id, data.start_ms, data.end_ms + 1)
    if not rows:
        return _judge(check.type, name, None, check.limit, Comparison.AT_MOST, limit_source="template",
                      missing="no ISO 9283 pose measurements in the window")
    try:
        report = analysis.pose_stats_by_pose(
            [r.pose for r in rows],
            [(r.commanded_x_mm, r.commanded_y_mm, r.commanded_z_mm) for r in rows],
            [(r.attained_x_mm, r.attained_y_mm, r.attained_z_mm) for r in rows], commanded_tol_mm=0.01)
    except ValueError as exc:
        return _judge(check.type, name, None, check.limit, Comparison.AT_MOST, limit_source="template",
                      missing=f"pose data unusable: {exc}")
    measured = report.ap_mm if accuracy else report.rp_mm
    details = {"worst_pose": report.worst_ap_pose if accuracy else report.worst_rp_pose,
               "by_pose": {pose: {"ap_mm": round(s.ap_mm, 5), "rp_mm": round(s.rp_mm, 5), "n": s.n}
                           for pose, s in report.by_pose},
               "standard": "ISO 9283 (worst pose)"}
    return _judge(check.type, name, round(measured, 5), check.limit, Comparison.AT_MOST, limit_source="template",
                  details=details)


def _check_scalar_joint(check: CheckSpec, data: RunData, joint: str, parts: Sequence[PartAtJoint]) -> Evaluated:
    n = int(joint[1:])
    prefix = joint.lower()
    if check.type in (CheckType.MOTOR_TEMP_MAX, CheckType.MOTOR_TEMP_RISE):
        ts, values = data.series.get(temp_key(n), (np.zeros(0), np.zeros(0)))
        if check.type == CheckType.MOTOR_TEMP_MAX:
            limit, source = _limit(check, DEFAULT_MAX_TEMP_C, parts, "max_temp_c")
            measured = float(values.max()) if values.size else None
            return _judge(check.type, f"{prefix}_temp_max_c", measured, limit, Comparison.AT_MOST, joint=joint,
                          limit_source=source, missing=f"no {temp_key(n)} samples in the window",
                          details={"n": int(values.size)})
        limit, source = _limit(check, DEFAULT_MAX_TEMP_RISE_K, parts, "max_temp_rise_k")
        if values.size < 4:
            return _judge(check.type, f"{prefix}_temp_rise_k", None, limit, Comparison.AT_MOST, joint=joint,
                          limit_source=source, missing=f"fewer than 4 {temp_key(n)} samples in the window")
        rise = analysis.temperature_rise(ts / 1000.0, values)
        details = {"initial_c": round(rise.initial_c, 3), "final_c": round(rise.final_c, 3),
                   "final_slope_k_per_h": round(rise.final_slope_k_per_h, 3), "steady_state": rise.steady_state}
        evaluated = _judge(check.type, f"{prefix}_temp_rise_k", round(rise.rise_k, 3), limit, Comparison.AT_MOST,
                           joint=joint, limit_source=source, details=details)
        if check.require_steady_state and not rise.steady_state and evaluated.result.passed:
            evaluated.result = analysis.CheckResult(
                name=evaluated.result.name, measured=evaluated.result.measured, limit=limit,
                comparison=Comparison.AT_MOST, passed=False,
                explanation=f"{prefix}_temp_rise_k: the temperature was still rising "
                            f"{rise.final_slope_k_per_h:.3g} K/h at the end (not steady, IEC 60034-1): fail")
        return evaluated
    # current ratio
    ts, values = data.series.get(current_key(n), (np.zeros(0), np.zeros(0)))
    limit, source = _limit(check, DEFAULT_MAX_CURRENT_RATIO, parts, "max_current_ratio")
    rated_candidates = [(float(p.limits["rated_current_a"]), p) for p in parts
                        if isinstance(p.limits.get("rated_current_a"), int | float) and p.limits["rated_current_a"] > 0]
    motors = [c for c in rated_candidates if c[1].category == PartCategory.SERVO_MOTOR] or rated_candidates
    if motors:
        rated, owner = min(motors, key=lambda c: c[0])
        rated_source = f"part type {owner.part_type.part_number}"
    elif check.rated_current_a:
        rated, rated_source = float(check.rated_current_a), "template"
    else:
        return _judge(check.type, f"{prefix}_current_ratio", None, limit, Comparison.AT_MOST, joint=joint,
                      limit_source=source, missing=f"no rated_current_a for {joint} (part type test_limits or "
                                                   "template)")
    if not values.size:
        return _judge(check.type, f"{prefix}_current_ratio", None, limit, Comparison.AT_MOST, joint=joint,
                      limit_source=source, missing=f"no {current_key(n)} samples in the window")
    current_rms = analysis.rms(values)
    return _judge(check.type, f"{prefix}_current_ratio", round(current_rms / rated, 4), limit, Comparison.AT_MOST,
                  joint=joint, limit_source=source,
                  details={"current_rms_a": round(current_rms, 4), "rated_current_a": rated,
                           "rated_source": rated_source, "n": int(values.size)})


@dataclass(slots=True)
class _Capture:
    """Contiguous blocks of one channel (one vibration capture)."""

    rate_hz: float
    t0_ms: int
    end_ms: float
    block_ids: list[int]


def _captures(session: Session, robot_id: int, channel: str, start_ms: int, end_ms: int) -> list[_Capture]:
    rows = session.exec(select(WaveformBlock.id, WaveformBlock.t0_ms, WaveformBlock.rate_hz,
                                  WaveformBlock.n_samples)
                           .where(WaveformBlock.robot_id == robot_id, WaveformBlock.channel == channel,
                                  col(WaveformBlock.t0_ms) >= start_ms, col(WaveformBlock.t0_ms) <= end_ms)
                           .order_by(col(WaveformBlock.t0_ms)))
    out: list[_Capture] = []
    for block_id, t0, rate, n in rows:
        assert block_id is not None
        block_end = t0 + n / rate * 1000.0
        last = out[-1] if out else None
        if last is not None and last.rate_hz == rate and abs(t0 - last.end_ms) <= 2.0:
            last.block_ids.append(int(block_id))
            last.end_ms = block_end
        else:
            out.append(_Capture(rate_hz=rate, t0_ms=t0, end_ms=block_end, block_ids=[int(block_id)]))
    return out


def _load_capture(session: Session, capture: _Capture) -> np.ndarray:
    rows = session.exec(select(WaveformBlock.t0_ms, WaveformBlock.data)
                           .where(col(WaveformBlock.id).in_(capture.block_ids)).order_by(col(WaveformBlock.t0_ms)))
    return np.concatenate([np.frombuffer(data, dtype="<f4").astype(np.float64) for _, data in rows])


def _spread(items: list[_Capture], at_most: int) -> list[_Capture]:
    if len(items) <= at_most:
        return items
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, at_most)).astype(int))
    return [items[i] for i in picks]


def _shaft_hz(data: RunData, n: int, capture: _Capture) -> float | None:
    ts, values = data.series.get(speed_key(n), (np.zeros(0), np.zeros(0)))
    if not values.size:
        return None
    near = (ts >= capture.t0_ms - SPEED_WINDOW_MS) & (ts <= capture.end_ms + SPEED_WINDOW_MS)
    if not near.any():
        return None
    speed = float(np.median(values[near]))
    return speed if speed > 0 else None


def _bearing_sources(check: CheckSpec, parts: Sequence[PartAtJoint]) -> list[tuple[BearingGeometry, int | None,
                                                                                     str]]:
    out: list[tuple[BearingGeometry, int | None, str]] = []
    for entry in parts:
        raw = entry.limits.get("bearing")
        if isinstance(raw, dict):
            try:
                out.append((BearingGeometry.model_validate(raw), entry.part.id,
                            f"part type {entry.part_type.part_number} (bearing)"))
            except ValueError:
                log.warning("part type %s has an invalid test_limits.bearing", entry.part_type.part_number)
    if not out and check.bearing is not None:
        out.append((check.bearing, None, "template (bearing)"))
    return out


def _defect_score(peak: analysis.DefectPeak) -> float:
    """The dB figure that reaches the threshold exactly when ``peak.detected``: min(fundamental, k-th best)."""
    ratios = sorted(peak.ratio_db, reverse=True)
    return min(peak.ratio_db[0], ratios[peak.min_harmonics - 1])


def _check_vibration_joint(session: Session, specs: Sequence[CheckSpec], data: RunData, joint: str,
                           parts: Sequence[PartAtJoint]) -> list[Evaluated]:
    n = int(joint[1:])
    prefix = joint.lower()
    channel = vibration_channel(n)
    max_captures = max((c.max_captures or DEFAULT_MAX_CAPTURES) for c in specs)
    captures = _spread(_captures(session, data.robot_id, channel, data.start_ms, data.end_ms), max_captures)
    zone_spec = next((c for c in specs if c.type == CheckType.VIBRATION_ZONE), None)
    bearing_spec = next((c for c in specs if c.type == CheckType.BEARING_DEFECT), None)
    bearings = _bearing_sources(bearing_spec, parts) if bearing_spec else []
    defects = list(bearing_spec.defects or DEFAULT_DEFECTS) if bearing_spec else []
    velocity_energy = 0.0
    velocity_time_s = 0.0
    velocity_max = 0.0
    velocity_skipped: list[str] = []
    scores: dict[tuple[int, str], list[float]] = {(i, d): [] for i in range(len(bearings)) for d in defects}
    bearing_skipped: dict[tuple[int, str], list[str]] = {key: [] for key in scores}
    for capture in captures:
        values = _load_capture(session, capture)
        duration_s = values.size / capture.rate_hz
        if zone_spec is not None:
            try:
                velocity = analysis.velocity_rms_mm_s(values, capture.rate_hz)
                velocity_energy += velocity**2 * duration_s
                velocity_time_s += duration_s
                velocity_max = max(velocity_max, velocity)
            except ValueError as exc:
                velocity_skipped.append(str(exc))
        if not bearings or bearing_spec is None:
            continue
        shaft = _shaft_hz(data, n, capture)
        band = bearing_spec.band_hz or (capture.rate_hz / 10, capture.rate_hz * 0.4)
        for i, (geometry, _, _) in enumerate(bearings):
            for defect in defects:
                if shaft is None:
                    bearing_skipped[(i, defect)].append(f"no {speed_key(n)} near the capture at {capture.t0_ms}")
                    continue
                try:
                    frequencies = analysis.bearing_frequencies(
                        shaft * geometry.speed_ratio, geometry.n_elements, geometry.ball_d_mm, geometry.pitch_d_mm,
                        geometry.contact_angle_deg)
                    defect_hz = frequencies.bpfo_hz if defect == "bpfo" else frequencies.bpfi_hz
                    peak = analysis.detect_bearing_defect(
                        values, capture.rate_hz, defect_hz, band_hz=(float(band[0]), float(band[1])),
                        threshold_db=bearing_spec.threshold_db or DEFAULT_THRESHOLD_DB)
                    scores[(i, defect)].append(_defect_score(peak))
                except ValueError as exc:
                    bearing_skipped[(i, defect)].append(str(exc)[:200])
    out: list[Evaluated] = []
    if zone_spec is not None:
        out.append(_zone_result(zone_spec, joint, parts, velocity_energy, velocity_time_s, velocity_max,
                                len(captures), velocity_skipped))
    if bearing_spec is not None:
        threshold = bearing_spec.threshold_db or DEFAULT_THRESHOLD_DB
        source = "template" if bearing_spec.threshold_db else "default"
        if not bearings:
            for defect in defects:
                out.append(_judge(CheckType.BEARING_DEFECT, f"{prefix}_bearing_{defect}_db", None, threshold,
                                  Comparison.BELOW, joint=joint, limit_source=source,
                                  missing=f"no bearing geometry for {joint}: set test_limits.bearing on the part "
                                          "type or 'bearing' on the template check"))
        for i, (geometry, part_id, geometry_source) in enumerate(bearings):
            for defect in defects:
                found = scores[(i, defect)]
                measured = float(statistics.median(found)) if found else None
                details = {"geometry": geometry.model_dump(), "geometry_source": geometry_source,
                           "captures": len(found), "scores_db": [round(s, 2) for s in found],
                           "skipped": bearing_skipped[(i, defect)][:5], "method": "envelope spectrum, median over "
                                                                                  "captures"}
                missing = (f"no {channel} capture in the window" if not captures else
                           "no capture could be analysed: " + "; ".join(bearing_skipped[(i, defect)][:2]))
                out.append(_judge(CheckType.BEARING_DEFECT, f"{prefix}_bearing_{defect}_db",
                                  round(measured, 3) if measured is not None else None, threshold, Comparison.BELOW,
                                  joint=joint, part_id=part_id, limit_source=source, details=details,
                                  missing=missing))
    return out


def _zone_result(spec: CheckSpec, joint: str, parts: Sequence[PartAtJoint], energy: float, seconds: float,
                 velocity_max: float, captures: int, skipped: list[str]) -> Evaluated:
    classes = [(p.limits.get("vibration_class"), p) for p in parts if p.limits.get("vibration_class")]
    classes.sort(key=lambda c: c[1].category != PartCategory.SERVO_MOTOR)
    if classes and classes[0][0] in {m.value for m in MachineClass}:
        machine_class = MachineClass(classes[0][0])
        class_source = f"part type {classes[0][1].part_type.part_number}"
    elif spec.machine_class is not None:
        machine_class, class_source = spec.machine_class, "template"
    else:
        machine_class, class_source = DEFAULT_MACHINE_CLASS, "default"
    max_zone = spec.max_zone or DEFAULT_MAX_ZONE
    bounds = analysis.ISO_10816_ZONES[machine_class]
    limit = {VibrationZone.A: bounds.a_b_mm_s, VibrationZone.B: bounds.b_c_mm_s,
             VibrationZone.C: bounds.c_d_mm_s}.get(max_zone, bounds.c_d_mm_s * 10)
    if spec.limit is not None:
        limit = min(limit, float(spec.limit))
    name = f"{joint.lower()}_velocity_rms_mm_s"
    measured = math.sqrt(energy / seconds) if seconds > 0 else None
    details: dict[str, Any] = {"machine_class": machine_class.value, "class_source": class_source,
                               "max_zone": max_zone.value, "captures": captures, "skipped": skipped[:5],
                               "band_hz": [10.0, 1000.0], "source": bounds.source}
    if measured is not None:
        details |= {"zone": analysis.vibration_zone(measured, machine_class).value,
                    "max_capture_mm_s": round(velocity_max, 4)}
    evaluated = _judge(CheckType.VIBRATION_ZONE, name, round(measured, 4) if measured is not None else None, limit,
                       Comparison.AT_MOST, joint=joint, limit_source=f"ISO 10816 zone {max_zone.value}/"
                       f"{machine_class.value} ({class_source})", details=details,
                       missing=f"no usable {vibration_channel(int(joint[1:]))} capture in the window")
    if measured is not None:
        verdict = "pass" if evaluated.result.passed else "fail"
        evaluated.result = analysis.CheckResult(
            name=name, measured=evaluated.result.measured, limit=limit, comparison=Comparison.AT_MOST,
            passed=evaluated.result.passed,
            explanation=f"{name} = {measured:.3g} mm/s: ISO 10816 zone {details['zone']} ({machine_class.value}); "
                        f"zone {max_zone.value} or better required (<= {limit:.3g} mm/s): {verdict}")
    return evaluated


# --- finishing a run ---------------------------------------------------------------------------------------------


def _critical(row: RunCheckResult) -> bool:
    """Failures that put the machine at risk: vibration in zone D, or a motor above its maximum temperature."""
    if row.passed:
        return False
    return (row.check_type == CheckType.VIBRATION_ZONE and row.details.get("zone") == VibrationZone.D.value) or (
        row.check_type == CheckType.MOTOR_TEMP_MAX and row.measured is not None)


def _result_dict(row: RunCheckResult) -> dict[str, Any]:
    result: dict[str, Any] = _clean({
        "check": row.name, "check_type": str(row.check_type), "joint": row.joint, "part_id": row.part_id,
        "measured": row.measured, "limit": row.limit, "comparison": str(row.comparison), "unit": row.unit,
        "passed": row.passed, "explanation": row.explanation,
        # the ISO 10816 zone travels with the result so the reuse score can read it from the part's event
        "vibration_zone": (row.details or {}).get("zone")})
    return result


def finish_run(session: Session, run: TestRun, *, actor: User, window_end: datetime | None = None,
               settings: Settings | None = None, now: datetime | None = None) -> TestRun:
    """Judge the run's window, store every check result, write a 'tested' event on each part installed in the
    window with the checks that concern it, set the robot's status, and open a ticket for a failed certification."""
    if run.state != RunState.RUNNING:
        raise _refuse(run, "finish")
    now = now or utcnow()
    now_ms = int(now.timestamp() * 1000)
    end_ms = now_ms if window_end is None else _to_ms(window_end, "window_end")
    if end_ms > now_ms + MAX_FUTURE_MS:
        raise ValidationError("window_end must not lie in the future")
    if end_ms <= run.window_start_ms:
        raise ValidationError("window_end must come after the window start "
                              f"({_ms_to_dt(run.window_start_ms).isoformat()})")
    robot = parts_service.get_robot(session, run.robot_id)
    parts = parts_in_window(session, run.robot_id, start_ms=run.window_start_ms, end_ms=end_ms)
    evaluated = evaluate_run(session, robot, spec=run.spec, start_ms=run.window_start_ms, end_ms=end_ms,
                             parts=parts)
    rows = []
    for item in evaluated:
        result = item.result
        measured = result.measured if result.measured is not None and math.isfinite(result.measured) else None
        row = RunCheckResult(run_id=run.id, part_id=item.part_id, name=result.name,  # type: ignore[arg-type]
                             check_type=item.check_type, joint=item.joint, measured=measured, limit=result.limit,
                             comparison=result.comparison, unit=item.unit, passed=result.passed,
                             explanation=result.explanation[:1000], limit_source=item.limit_source[:200],
                             details=_clean(item.details))
        session.add(row)
        rows.append(row)
    session.flush()
    failed = [r for r in rows if not r.passed]
    run.state = RunState.FAILED if failed or not rows else RunState.PASSED
    run.finished_at = now
    run.window_end_ms = end_ms
    run.finished_by_id = actor.id
    run.checks_total = len(rows)
    run.checks_failed = len(failed)
    part_type_id = run.spec.get("part_type_id")
    tested = [p for p in parts if part_type_id is None or p.part.part_type_id == part_type_id]
    summary_parts, skipped = _write_part_events(session, run, tested, rows, actor=actor)
    run.summary = {"parts": summary_parts, "skipped_parts": skipped,
                   "failed_checks": [r.name for r in failed][:200]}
    status = (RobotStatus.CERTIFIED if run.kind == TestKind.CERTIFICATION else
              RobotStatus(run.robot_status_before or RobotStatus.ON_TEST))
    if run.state == RunState.FAILED:
        status = RobotStatus.IN_REMANUFACTURING
    parts_service.set_robot_status(session, robot, status)
    if run.state == RunState.FAILED:
        ticket_id = _open_ticket(session, run, failed, summary_parts, settings=settings)
        if ticket_id is not None:
            run.summary = run.summary | {"ticket_id": ticket_id}
    session.add(run)
    session.flush()
    return run


def _write_part_events(session: Session, run: TestRun, parts: Sequence[PartAtJoint], rows: Sequence[RunCheckResult],
                       *, actor: User) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    summary: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for entry in parts:
        mine = [r for r in rows if concerns(entry, r)]
        passed = all(r.passed for r in mine)
        results = [_result_dict(r) for r in mine][:200]
        note = (f"{run.spec.get('template', 'test')} run {run.id}: {len(mine)} check(s), "
                f"{sum(not r.passed for r in mine)} failed")
        extra = {"template": run.spec.get("template"), "kind": str(run.kind), "joint": entry.joint,
                 "window_start_ms": run.window_start_ms, "window_end_ms": run.window_end_ms,
                 "installed_fraction": entry.installed_fraction, "attempt": run.attempt}
        try:
            parts_service.record_event(session, entry.part, EventCreate(
                type=EventType.TESTED, passed=passed, results=results, test_run_id=run.id, note=note),
                actor=actor, extra_details=extra)
        except IllegalTransitionError as exc:
            skipped.append({"part_id": entry.part.id, "serial": entry.part.serial, "reason": exc.message})
            continue
        summary.append({"part_id": entry.part.id, "serial": entry.part.serial, "joint": entry.joint,
                        "category": entry.category.value, "passed": passed, "checks": len(mine),
                        "failed": [r.name for r in mine if not r.passed]})
    return summary, skipped


def _open_ticket(session: Session, run: TestRun, failed: Sequence[RunCheckResult],
                 parts_summary: Sequence[dict[str, Any]], *, settings: Settings | None) -> int | None:
    """Ask consulting for an auto-ticket (its rule decides); a refusal never undoes the verdict."""
    from refurb.consulting import service as consulting_service

    failed_checks = [_clean({"check": r.name, "check_type": str(r.check_type), "joint": r.joint,
                             "value": r.measured, "limit": r.limit, "unit": r.unit, "part_id": r.part_id})
                     for r in failed]
    part_ids = [p["part_id"] for p in parts_summary if not p["passed"]]
    try:
        ticket = consulting_service.open_ticket_for_failed_run(
            session, robot_id=run.robot_id, test_run_id=run.id, failed_checks=failed_checks,  # type: ignore[arg-type]
            part_ids=part_ids, critical=any(_critical(r) for r in failed),
            certification=run.kind == TestKind.CERTIFICATION, settings=settings)
    except RefurbError as exc:
        log.warning("no auto-ticket for failed test run %s: %s", run.id, exc.message)
        return None
    return ticket.id if ticket is not None else None


# --- failure reasons ---------------------------------------------------------------------------------------------


def failure_reasons(session: Session, *, robot_model: str | None = None, template_id: int | None = None,
                    since: datetime | None = None, until: datetime | None = None) -> FailureReasonsPublic:
    """Count failed checks of finished runs by check type (and joint): what makes robots fail."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise ValidationError(f"{name} must carry a time zone, e.g. 2026-01-31T09:00:00+09:00 or ...Z")
    runs = select(TestRun.id).where(col(TestRun.state).in_([RunState.PASSED, RunState.FAILED]))
    if robot_model:
        runs = runs.join(Robot, col(Robot.id) == TestRun.robot_id).where(Robot.model == robot_model)
    if template_id is not None:
        runs = runs.where(TestRun.template_id == template_id)
    if since is not None:
        runs = runs.where(col(TestRun.finished_at) >= since)
    if until is not None:
        runs = runs.where(col(TestRun.finished_at) < until)
    finished = count_rows(session, runs)
    failed_runs = count_rows(session, runs.where(TestRun.state == RunState.FAILED))
    run_ids = runs.subquery()
    grouped = session.exec(
        select(RunCheckResult.check_type, RunCheckResult.joint, func.count(),
               func.count(func.distinct(RunCheckResult.run_id)))
        .where(col(RunCheckResult.run_id).in_(select(run_ids.c.id)), col(RunCheckResult.passed).is_(False))
        .group_by(col(RunCheckResult.check_type), col(RunCheckResult.joint)))
    totals: dict[str, dict[str, Any]] = {}
    run_sets = session.exec(
        select(RunCheckResult.check_type, func.count(func.distinct(RunCheckResult.run_id)))
        .where(col(RunCheckResult.run_id).in_(select(run_ids.c.id)), col(RunCheckResult.passed).is_(False))
        .group_by(RunCheckResult.check_type))
    distinct_runs = {str(t): int(n) for t, n in run_sets}
    for check_type, joint, count, _ in grouped:
        entry = totals.setdefault(str(check_type), {"failed_checks": 0, "by_joint": {}})
        entry["failed_checks"] += int(count)
        entry["by_joint"][joint or "robot"] = entry["by_joint"].get(joint or "robot", 0) + int(count)
    reasons = [FailureReason(check_type=CheckType(t), failed_checks=v["failed_checks"],
                             failed_runs=distinct_runs.get(t, 0), by_joint=dict(sorted(v["by_joint"].items())))
               for t, v in totals.items()]
    reasons.sort(key=lambda r: (-r.failed_runs, -r.failed_checks, r.check_type.value))
    return FailureReasonsPublic(runs_finished=finished, runs_failed=failed_runs, reasons=reasons)


# --- alarms ------------------------------------------------------------------------------------------------------


def create_alarm_rule(session: Session, data: AlarmRuleCreate) -> AlarmRule:
    """Add an alarm rule."""
    rule = AlarmRule(**data.model_dump())
    session.add(rule)
    session.flush()
    return rule


def list_alarm_rules(session: Session, *, robot_model: str | None = None, enabled: bool | None = None,
                     offset: int = 0, limit: int = 100) -> tuple[list[AlarmRule], int]:
    """Return a page of alarm rules."""
    query = select(AlarmRule)
    if robot_model:
        query = query.where(or_(col(AlarmRule.robot_model) == robot_model, col(AlarmRule.robot_model).is_(None)))
    if enabled is not None:
        query = query.where(AlarmRule.enabled == enabled)
    rows = list(session.exec(query.order_by(col(AlarmRule.id)).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def load_alarm_rules(session: Session) -> list[AlarmRule]:
    """Return the enabled rules (load once per ingest batch and pass to :func:`evaluate_alarms`)."""
    return list(session.exec(select(AlarmRule).where(col(AlarmRule.enabled).is_(True)).order_by(col(AlarmRule.id))))


_COMPARE = {Comparison.ABOVE: lambda v, t: v > t, Comparison.AT_LEAST: lambda v, t: v >= t,
            Comparison.BELOW: lambda v, t: v < t, Comparison.AT_MOST: lambda v, t: v <= t}


def _sample_tuple(sample: Any) -> tuple[str, int, float] | None:
    if isinstance(sample, tuple):
        key, ts, value = sample[:3]
    else:
        key, ts, value = sample.key, sample.ts_ms, sample.value
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return str(key), int(ts), float(value)


@dataclass(slots=True)
class AlarmChanges:
    raised: list[Alarm] = field(default_factory=list)
    cleared: list[Alarm] = field(default_factory=list)


def evaluate_alarms(session: Session, robot_id: int, samples: Iterable[Any], *,
                    rules: Sequence[AlarmRule] | None = None, settings: Settings | None = None) -> AlarmChanges:
    """Run the alarm rules over a batch of one robot's new samples; raise and clear alarms.

    ``samples`` are objects with ``key``, ``ts_ms`` and ``value`` (parsing.ScalarSample, telemetry Sample rows) or
    ``(key, ts_ms, value)`` tuples, in any order; text samples are ignored. Cost per call: the rules (pass ``rules``
    from :func:`load_alarm_rules` to skip that query) and one query for the matching (rule, key) states, only when
    a rule matches a key of the batch. Samples not newer than what a state already saw are ignored, so redelivered
    or back-filled data never rewrites alarm history. Never raises for the data's sake; call it inside the batch's
    transaction, before the commit.
    """
    rules = load_alarm_rules(session) if rules is None else [r for r in rules if r.enabled]
    if not rules:
        return AlarmChanges()
    by_key: dict[str, list[tuple[int, float]]] = {}
    for sample in samples:
        parsed = _sample_tuple(sample)
        if parsed is not None:
            by_key.setdefault(parsed[0], []).append((parsed[1], parsed[2]))
    if not by_key:
        return AlarmChanges()
    robot: Robot | None = None
    pairs: list[tuple[AlarmRule, str]] = []
    for rule in rules:
        if rule.robot_model:
            robot = robot or session.get(Robot, robot_id)
            if robot is None or robot.model != rule.robot_model:
                continue
        if "*" in rule.key:
            pairs.extend((rule, key) for key in by_key if fnmatch.fnmatchcase(key, rule.key))
        elif rule.key in by_key:
            pairs.append((rule, rule.key))
    if not pairs:
        return AlarmChanges()
    rule_ids = sorted({rule.id for rule, _ in pairs if rule.id is not None})
    keys = sorted({key for _, key in pairs})
    states = {(s.rule_id, s.key): s for s in session.exec(select(AlarmState).where(
        AlarmState.robot_id == robot_id, col(AlarmState.rule_id).in_(rule_ids), col(AlarmState.key).in_(keys)))}
    active_ids = [s.active_alarm_id for s in states.values() if s.active_alarm_id is not None]
    active = {a.id: a for a in session.exec(select(Alarm).where(col(Alarm.id).in_(active_ids)))} if active_ids else {}
    changes = AlarmChanges()
    for rule, key in pairs:
        assert rule.id is not None
        state = states.get((rule.id, key))
        if state is None:
            state = AlarmState(rule_id=rule.id, robot_id=robot_id, key=key, last_ts_ms=-(2**62))
            states[(rule.id, key)] = state
        alarm = active.get(state.active_alarm_id) if state.active_alarm_id is not None else None
        before = (state.breach_count, state.breach_since_ms, state.clear_count, state.last_ts_ms)
        for ts, value in sorted(by_key[key]):
            if ts <= state.last_ts_ms:
                continue
            state.last_ts_ms = ts
            alarm = _step(session, rule, state, alarm, robot_id, key, ts, value, changes)
        if (state.breach_count, state.breach_since_ms, state.clear_count, state.last_ts_ms) != before:
            session.add(state)
    session.flush()
    for alarm in changes.raised:
        if alarm.cleared_at is None:
            state = states[(alarm.rule_id, alarm.key)]
            state.active_alarm_id = alarm.id
            session.add(state)
        if alarm.severity == "critical":
            _alarm_ticket(session, alarm, settings=settings)
    for alarm in changes.cleared:
        state = states[(alarm.rule_id, alarm.key)]
        if state.active_alarm_id == alarm.id:
            state.active_alarm_id = None
            session.add(state)
    session.flush()
    return changes


def _step(session: Session, rule: AlarmRule, state: AlarmState, alarm: Alarm | None, robot_id: int, key: str,
          ts: int, value: float, changes: AlarmChanges) -> Alarm | None:
    """Advance one (rule, robot, key) by one sample; return the active alarm afterwards (or None)."""
    comparison = Comparison(rule.comparison)
    breaching = _COMPARE[comparison](value, rule.threshold)
    if alarm is None:
        if not breaching:
            state.breach_count, state.breach_since_ms = 0, None
            return None
        state.breach_count += 1
        if state.breach_since_ms is None:
            state.breach_since_ms = ts
        long_enough = rule.for_duration_s is None or ts - state.breach_since_ms >= rule.for_duration_s * 1000
        if state.breach_count < rule.n_consecutive or not long_enough:
            return None
        alarm = Alarm(rule_id=rule.id, robot_id=robot_id, key=key, severity=rule.severity,  # type: ignore[arg-type]
                      raised_at=_ms_to_dt(ts), raised_ts_ms=ts, value=value, peak_value=value,
                      message=(f"{rule.name}: {key} {comparison.value} {rule.threshold:g} for "
                               f"{state.breach_count} sample(s) over {(ts - state.breach_since_ms) / 1000:g} s "
                               f"(value {value:g})")[:500])
        session.add(alarm)
        changes.raised.append(alarm)
        state.breach_count, state.breach_since_ms, state.clear_count = 0, None, 0
        return alarm
    upward = comparison in (Comparison.ABOVE, Comparison.AT_LEAST)
    alarm.peak_value = max(alarm.peak_value, value) if upward else min(alarm.peak_value, value)
    clear_at = rule.clear_threshold if rule.clear_threshold is not None else rule.threshold
    if _COMPARE[comparison](value, clear_at):
        state.clear_count = 0
    else:
        state.clear_count += 1
        if state.clear_count >= rule.clear_n_consecutive:
            alarm.cleared_at = _ms_to_dt(ts)
            alarm.cleared_ts_ms = ts
            alarm.clear_value = value
            changes.cleared.append(alarm)
            state.clear_count = 0
            session.add(alarm)
            return None
    session.add(alarm)
    return alarm


def _alarm_ticket(session: Session, alarm: Alarm, *, settings: Settings | None) -> None:
    from refurb.consulting import service as consulting_service

    joint = re.match(r"^j([1-9])_", alarm.key)
    part_ids: list[int] = []
    if joint:
        robot = session.get(Robot, alarm.robot_id)
        if robot is not None:
            now_ms = int(utcnow().timestamp() * 1000)
            part_ids = [p.part.id for p in parts_in_window(session, alarm.robot_id, start_ms=now_ms - 1, end_ms=now_ms)
                        if p.joint == f"J{joint.group(1)}" and p.part.id is not None]
    try:
        ticket = consulting_service.open_ticket_for_alarm(
            session, robot_id=alarm.robot_id, alarm_id=alarm.id, key=alarm.key,  # type: ignore[arg-type]
            severity=str(alarm.severity), part_ids=part_ids, message=alarm.message, settings=settings)
    except RefurbError as exc:
        log.warning("no ticket for critical alarm %s: %s", alarm.id, exc.message)
        return
    if ticket is not None:
        alarm.ticket_id = ticket.id
        session.add(alarm)


def list_alarms(session: Session, *, viewer: User | None, robot_id: int | None = None, active: bool | None = None,
                rule_id: int | None = None, offset: int = 0, limit: int = 100) -> tuple[list[Alarm], int]:
    """Return a page of alarms the viewer may see, newest first."""
    query = select(Alarm)
    scope = customer_org_scope(viewer) if viewer is not None else None
    if scope is not None:
        query = query.join(Robot, col(Robot.id) == Alarm.robot_id).where(Robot.owner_org_id == scope)
    if robot_id is not None:
        query = query.where(Alarm.robot_id == robot_id)
    if active is True:
        query = query.where(col(Alarm.cleared_at).is_(None))
    elif active is False:
        query = query.where(col(Alarm.cleared_at).is_not(None))
    if rule_id is not None:
        query = query.where(Alarm.rule_id == rule_id)
    rows = list(session.exec(query.order_by(col(Alarm.raised_ts_ms).desc(), col(Alarm.id).desc())
                             .offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def alarm_public(alarm: Alarm) -> dict[str, Any]:
    """Shape an alarm for the API."""
    return {**alarm.model_dump(), "active": alarm.cleared_at is None}
