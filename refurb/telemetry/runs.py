"""Tables and API shapes of test runs and alarms: templates with their checks, runs, per-check results, alarm
rules, alarm state and alarms (docs/api.md (Test runs)).

Telemetry key convention the checks read (one robot, joints numbered 1..9 from the base):
``j{n}_temp_c`` motor temperature in °C, ``j{n}_current_a`` motor current in A, ``j{n}_speed_hz`` speed of the motor
shaft in rev/s, waveform channel ``j{n}_vib`` joint acceleration in m/s², and the ``poses`` topic for ISO 9283.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from refurb.db import EnumText, UTCDateTime, utcnow
from refurb.telemetry.analysis import Comparison, MachineClass, VibrationZone

JOINT_RE = re.compile(r"^J[1-9]$")
ALARM_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-*]{1,64}$")
MAX_JOINTS = 9


def temp_key(joint: int) -> str:
    """Return the scalar key of a joint's motor temperature (°C)."""
    return f"j{joint}_temp_c"


def current_key(joint: int) -> str:
    """Return the scalar key of a joint's motor current (A)."""
    return f"j{joint}_current_a"


def speed_key(joint: int) -> str:
    """Return the scalar key of a joint's motor shaft speed (rev/s)."""
    return f"j{joint}_speed_hz"


def vibration_channel(joint: int) -> str:
    """Return the waveform channel of a joint's acceleration (m/s²)."""
    return f"j{joint}_vib"


class TestKind(StrEnum):
    CERTIFICATION = "certification"
    RUN_IN = "run_in"
    QUICK = "quick"


class CheckType(StrEnum):
    """What a template's check measures; the unit of the measured value is fixed per type."""

    RUN_IN_HOURS = "run_in_hours"  # robot level, h, >=
    MOTOR_TEMP_MAX = "motor_temp_max"  # per joint, °C, <=
    MOTOR_TEMP_RISE = "motor_temp_rise"  # per joint, K, <=
    CURRENT_RATIO = "current_ratio"  # per joint, RMS current / rated current, <=
    VIBRATION_ZONE = "vibration_zone"  # per joint, mm/s RMS (10-1000 Hz), <= the upper boundary of the allowed zone
    BEARING_DEFECT = "bearing_defect"  # per joint and bearing, envelope peak over background in dB, <
    POSE_ACCURACY = "pose_accuracy"  # robot level, ISO 9283 AP of the worst pose, mm, <=
    POSE_REPEATABILITY = "pose_repeatability"  # robot level, ISO 9283 RP of the worst pose, mm, <=


JOINT_CHECKS = frozenset({CheckType.MOTOR_TEMP_MAX, CheckType.MOTOR_TEMP_RISE, CheckType.CURRENT_RATIO,
                          CheckType.VIBRATION_ZONE, CheckType.BEARING_DEFECT})
ROBOT_CHECKS = frozenset({CheckType.RUN_IN_HOURS, CheckType.POSE_ACCURACY, CheckType.POSE_REPEATABILITY})


class RunState(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"


FINISHED_STATES = frozenset({RunState.PASSED, RunState.FAILED, RunState.ABORTED})


class AlarmSeverity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be finite")
    return value


# --- templates ---------------------------------------------------------------------------------------------------


class BearingGeometry(SQLModel):
    """Rolling-bearing geometry for the defect frequencies (standards.md §3); lengths in mm."""

    n_elements: int = Field(ge=1, le=100)
    ball_d_mm: float = Field(gt=0)
    pitch_d_mm: float = Field(gt=0)
    contact_angle_deg: float = Field(default=0.0, ge=0, lt=90)
    speed_ratio: float = Field(default=1.0, gt=0, description="Bearing shaft speed / j{n}_speed_hz (1: motor shaft).")

    @model_validator(mode="after")
    def _ball_smaller_than_pitch(self) -> BearingGeometry:
        if self.ball_d_mm >= self.pitch_d_mm:
            raise ValueError("ball_d_mm must be smaller than pitch_d_mm")
        return self


class CheckSpec(SQLModel):
    """One check of a template. Unset fields take the part type's datasheet value or the documented default."""

    type: CheckType
    joints: list[str] | None = Field(default=None, max_length=MAX_JOINTS,
                                     description="Joint checks: which joints (J1..J9); default all of the template's.")
    limit: float | None = Field(default=None, description="Overrides the default; the stricter of this and the part "
                                                         "type's datasheet limit applies.")
    max_gap_s: float | None = Field(default=None, gt=0, description="run_in_hours: longest gap still counted.")
    require_steady_state: bool | None = Field(default=None, description="motor_temp_rise: the end must be steady.")
    rated_current_a: float | None = Field(default=None, gt=0, description="current_ratio: when no part type has it.")
    machine_class: MachineClass | None = Field(default=None, description="vibration_zone: when no part type has it.")
    max_zone: VibrationZone | None = Field(default=None, description="vibration_zone: worst zone that passes.")
    bearing: BearingGeometry | None = Field(default=None, description="bearing_defect: when no part type has it.")
    defects: list[Literal["bpfo", "bpfi"]] | None = Field(default=None, min_length=1, max_length=2)
    threshold_db: float | None = Field(default=None, gt=0, le=40)
    band_hz: tuple[float, float] | None = Field(default=None, description="bearing_defect: demodulation band.")
    max_captures: int | None = Field(default=None, ge=1, le=500)

    @field_validator("joints")
    @classmethod
    def _joint_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [v.strip().upper() for v in value]
        bad = [v for v in names if not JOINT_RE.match(v)]
        if bad:
            raise ValueError(f"joints must be named J1..J9, got {bad}")
        return sorted(set(names), key=names.index)

    @model_validator(mode="after")
    def _fits_type(self) -> CheckSpec:
        _finite(self.limit, "limit")
        if self.type in (CheckType.POSE_ACCURACY, CheckType.POSE_REPEATABILITY) and self.limit is None:
            raise ValueError(f"a {self.type.value} check needs 'limit': the robot model's datasheet figure in mm")
        if self.limit is not None and self.limit <= 0 and self.type != CheckType.BEARING_DEFECT:
            raise ValueError(f"limit of a {self.type.value} check must be > 0")
        if self.joints is not None and self.type in ROBOT_CHECKS:
            raise ValueError(f"a {self.type.value} check is robot-level; it takes no joints")
        if self.band_hz is not None and not 0 < self.band_hz[0] < self.band_hz[1]:
            raise ValueError("band_hz must be (low, high) with 0 < low < high")
        return self


class TestTemplateBase(SQLModel):
    name: str = Field(min_length=1, max_length=120, index=True, unique=True)
    kind: TestKind = Field(default=TestKind.CERTIFICATION, sa_type=EnumText(TestKind))
    robot_model: str | None = Field(default=None, max_length=80, index=True,
                                    description="Robots of this model only (None: any model).")
    part_type_id: int | None = Field(default=None, foreign_key="part_type.id", index=True,
                                     description="A part-type test: only parts of this type get 'tested' events.")
    joint_count: int = Field(default=6, ge=1, le=MAX_JOINTS)
    description: str = Field(default="", max_length=2000)


class TestTemplate(TestTemplateBase, table=True):
    """A reusable test: which checks, with which limits, for which robot model or part type."""

    __test__: ClassVar[bool] = False  # not a pytest test class
    __tablename__ = "test_template"
    id: int | None = Field(default=None, primary_key=True)
    checks: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TestTemplateCreate(TestTemplateBase):
    __test__: ClassVar[bool] = False
    checks: list[CheckSpec] = Field(min_length=1, max_length=100)


class TestTemplatePublic(TestTemplateBase):
    __test__: ClassVar[bool] = False
    id: int
    checks: list[dict[str, Any]]
    active: bool
    created_at: datetime


class TestTemplatesPublic(SQLModel):
    __test__: ClassVar[bool] = False
    data: list[TestTemplatePublic]
    count: int


# --- runs --------------------------------------------------------------------------------------------------------


class TestRun(SQLModel, table=True):
    """One test of one robot with one template over a data window; retests point at the run they repeat."""

    __test__: ClassVar[bool] = False
    __tablename__ = "test_run"
    id: int | None = Field(default=None, primary_key=True)
    robot_id: int = Field(foreign_key="robot.id", index=True)
    template_id: int = Field(foreign_key="test_template.id", index=True)
    kind: TestKind = Field(sa_type=EnumText(TestKind))
    state: RunState = Field(default=RunState.RUNNING, sa_type=EnumText(RunState), index=True)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    window_start_ms: int = Field(sa_type=BigInteger)
    window_end_ms: int | None = Field(default=None, sa_type=BigInteger)
    retest_of: int | None = Field(default=None, foreign_key="test_run.id", index=True)
    attempt: int = Field(default=1)
    started_by_id: int | None = Field(default=None, foreign_key="user.id")
    finished_by_id: int | None = Field(default=None, foreign_key="user.id")
    checks_total: int = 0
    checks_failed: int = 0
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    robot_status_before: str | None = Field(default=None, max_length=40)
    note: str = Field(default="", max_length=2000)


class RunCheckResult(SQLModel, table=True):
    """The verdict of one check in one run (one row per check, joint and, for bearings, part)."""

    __tablename__ = "test_check_result"
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="test_run.id", index=True)
    part_id: int | None = Field(default=None, foreign_key="part.id", index=True)
    name: str = Field(max_length=80)
    check_type: CheckType = Field(sa_type=EnumText(CheckType), index=True)
    joint: str | None = Field(default=None, max_length=8)
    measured: float | None = None
    limit: float
    comparison: Comparison = Field(sa_type=EnumText(Comparison, length=4))
    unit: str = Field(default="", max_length=16)
    passed: bool = Field(index=True)
    explanation: str = Field(max_length=1000)
    limit_source: str = Field(default="default", max_length=200)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class TestRunCreate(SQLModel):
    __test__: ClassVar[bool] = False
    robot_id: int
    template_id: int
    window_start: datetime | None = Field(default=None, description="Start of the data window (default now); may "
                                                                      "lie in the past, e.g. when a run-in began.")
    retest_of: int | None = Field(default=None, description="The failed or aborted run this repeats (default: the "
                                                             "robot's last unsuccessful run with the same template).")
    note: str = Field(default="", max_length=2000)


class TestRunFinish(SQLModel):
    __test__: ClassVar[bool] = False
    window_end: datetime | None = Field(default=None, description="End of the data window (default now).")


class TestRunAbort(SQLModel):
    __test__: ClassVar[bool] = False
    reason: str = Field(default="", max_length=1000)


class CheckResultPublic(SQLModel):
    id: int
    part_id: int | None
    name: str
    check_type: CheckType
    joint: str | None
    measured: float | None
    limit: float
    comparison: Comparison
    unit: str
    passed: bool
    explanation: str
    limit_source: str
    details: dict[str, Any]


class TestRunPublic(SQLModel):
    __test__: ClassVar[bool] = False
    id: int
    robot_id: int
    template_id: int
    kind: TestKind
    state: RunState
    started_at: datetime
    finished_at: datetime | None
    window_start_ms: int
    window_end_ms: int | None
    retest_of: int | None
    attempt: int
    checks_total: int
    checks_failed: int
    summary: dict[str, Any]
    note: str
    allowed: list[str] = Field(default_factory=list, description="Steps allowed now (finish, abort, retest).")
    checks: list[CheckResultPublic] = Field(default_factory=list)


class TestRunsPublic(SQLModel):
    __test__: ClassVar[bool] = False
    data: list[TestRunPublic]
    count: int


class FailureReason(SQLModel):
    check_type: CheckType
    failed_checks: int
    failed_runs: int
    by_joint: dict[str, int]


class FailureReasonsPublic(SQLModel):
    runs_finished: int
    runs_failed: int
    reasons: list[FailureReason]


# --- alarms ------------------------------------------------------------------------------------------------------


class AlarmRuleBase(SQLModel):
    name: str = Field(min_length=1, max_length=120)
    key: str = Field(min_length=1, max_length=64,
                     description="Telemetry key; '*' matches any characters (j*_temp_c: every joint).")
    comparison: Comparison = Field(sa_type=EnumText(Comparison, length=4))
    threshold: float
    n_consecutive: int = Field(default=1, ge=1, le=10_000, description="Breaching samples in a row before raising.")
    for_duration_s: float | None = Field(default=None, ge=0, le=7 * 86_400,
                                         description="...and for at least this long (first to last breaching sample).")
    clear_threshold: float | None = Field(default=None, description="Hysteresis: the alarm clears when the value no "
                                                                    "longer passes the comparison against this.")
    clear_n_consecutive: int = Field(default=1, ge=1, le=10_000)
    severity: AlarmSeverity = Field(default=AlarmSeverity.WARNING, sa_type=EnumText(AlarmSeverity))
    robot_model: str | None = Field(default=None, max_length=80, description="Robots of this model only.")


class AlarmRule(AlarmRuleBase, table=True):
    __tablename__ = "alarm_rule"
    id: int | None = Field(default=None, primary_key=True)
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AlarmRuleCreate(AlarmRuleBase):
    @field_validator("key")
    @classmethod
    def _key_pattern(cls, value: str) -> str:
        if not ALARM_KEY_RE.match(value):
            raise ValueError("key: letters, digits, '_', '.', '-' and the wildcard '*' only")
        return value

    @model_validator(mode="after")
    def _hysteresis_side(self) -> AlarmRuleCreate:
        _finite(self.threshold, "threshold")
        _finite(self.clear_threshold, "clear_threshold")
        if self.clear_threshold is not None:
            upward = self.comparison in (Comparison.ABOVE, Comparison.AT_LEAST)
            if upward and self.clear_threshold > self.threshold:
                raise ValueError("clear_threshold must be <= threshold for a '>'/'>=' rule (hysteresis below it)")
            if not upward and self.clear_threshold < self.threshold:
                raise ValueError("clear_threshold must be >= threshold for a '<'/'<=' rule (hysteresis above it)")
        return self


class AlarmRulePublic(AlarmRuleBase):
    id: int
    enabled: bool
    created_at: datetime


class AlarmRulesPublic(SQLModel):
    data: list[AlarmRulePublic]
    count: int


class AlarmState(SQLModel, table=True):
    """Where each (rule, robot, key) stands between batches: consecutive breaches so far, or the active alarm."""

    __tablename__ = "alarm_state"
    rule_id: int = Field(foreign_key="alarm_rule.id", primary_key=True)
    robot_id: int = Field(foreign_key="robot.id", primary_key=True)
    key: str = Field(max_length=64, primary_key=True)
    breach_count: int = 0
    breach_since_ms: int | None = Field(default=None, sa_type=BigInteger)
    clear_count: int = 0
    last_ts_ms: int = Field(default=0, sa_type=BigInteger)
    active_alarm_id: int | None = Field(default=None, foreign_key="alarm.id")


class Alarm(SQLModel, table=True):
    """A raised alarm; ``cleared_at`` is set when the clear condition held (times are the samples' times)."""

    __tablename__ = "alarm"
    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="alarm_rule.id", index=True)
    robot_id: int = Field(foreign_key="robot.id", index=True)
    key: str = Field(max_length=64)
    severity: AlarmSeverity = Field(sa_type=EnumText(AlarmSeverity))
    raised_at: datetime = Field(sa_type=UTCDateTime, index=True)
    raised_ts_ms: int = Field(sa_type=BigInteger)
    value: float
    peak_value: float
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    cleared_ts_ms: int | None = Field(default=None, sa_type=BigInteger)
    clear_value: float | None = None
    message: str = Field(default="", max_length=500)
    ticket_id: int | None = None


class AlarmPublic(SQLModel):
    id: int
    rule_id: int
    robot_id: int
    key: str
    severity: AlarmSeverity
    raised_at: datetime
    value: float
    peak_value: float
    cleared_at: datetime | None
    clear_value: float | None
    message: str
    active: bool
    ticket_id: int | None


class AlarmsPublic(SQLModel):
    data: list[AlarmPublic]
    count: int
