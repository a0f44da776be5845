"""Tables and API shapes of the parts domain (part types, parts, robots, events, installations)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import field_validator, model_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from refurb.db import EnumText, UTCDateTime, utcnow
from refurb.scoring.reuse import Disposition, Grade  # one definition: the score reasons in the same terms


class PartCategory(StrEnum):
    SERVO_MOTOR = "servo_motor"
    REDUCER = "reducer"
    ENCODER = "encoder"
    CONTROLLER_BOARD = "controller_board"
    CABLE_HARNESS = "cable_harness"
    CASTING = "casting"
    BEARING = "bearing"
    BRAKE = "brake"
    DRIVE = "drive"
    TEACH_PENDANT = "teach_pendant"
    OTHER = "other"


class PartStatus(StrEnum):
    REGISTERED = "registered"
    RECEIVED = "received"
    INSPECTED = "inspected"
    DISASSEMBLED = "disassembled"
    CLEANED = "cleaned"
    REPAIRED = "repaired"
    REASSEMBLED = "reassembled"
    TESTED = "tested"
    TEST_FAILED = "test_failed"
    CERTIFIED = "certified"
    SHIPPED = "shipped"
    RECYCLED = "recycled"
    SCRAPPED = "scrapped"


class EventType(StrEnum):
    RECEIVED = "received"
    INSPECTED = "inspected"
    DISASSEMBLED = "disassembled"
    CLEANED = "cleaned"
    REPAIRED = "repaired"
    REASSEMBLED = "reassembled"
    INSTALLED = "installed"
    REMOVED = "removed"
    TESTED = "tested"
    CERTIFIED = "certified"
    DISPOSITIONED = "dispositioned"
    QUARANTINED = "quarantined"
    RELEASED = "released"
    SHIPPED = "shipped"


class RobotStatus(StrEnum):
    RECEIVED = "received"
    IN_REMANUFACTURING = "in_remanufacturing"
    ON_TEST = "on_test"
    CERTIFIED = "certified"
    SHIPPED = "shipped"
    SCRAPPED = "scrapped"


# --- part types (catalog) --------------------------------------------------------------------------------------


class Material(SQLModel):
    material: str = Field(min_length=1, max_length=80)
    mass_kg: float = Field(gt=0, le=100_000)
    recycled_fraction: float = Field(default=0.0, ge=0, le=1)


class PartTypeBase(SQLModel):
    part_number: str = Field(min_length=1, max_length=80, index=True, unique=True)
    name: str = Field(min_length=1, max_length=200)
    category: PartCategory = Field(default=PartCategory.OTHER, sa_type=EnumText(PartCategory))
    manufacturer: str = Field(default="", max_length=120)
    gtin: str | None = Field(default=None, max_length=14, index=True, unique=True)
    design_life_h: float | None = Field(default=None, gt=0)
    design_life_cycles: int | None = Field(default=None, gt=0)
    industry_average_life_h: float | None = Field(default=None, gt=0)
    new_price: float | None = Field(default=None, ge=0)
    max_reman_generations: int = Field(default=3, ge=0, le=50)


class PartType(PartTypeBase, table=True):
    __tablename__ = "part_type"
    id: int | None = Field(default=None, primary_key=True)
    compatible_models: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    materials: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    test_limits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    @property
    def mass_kg(self) -> float:
        return float(sum(m.get("mass_kg", 0.0) for m in self.materials))


def _check_gtin(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) not in (8, 12, 13, 14):
        raise ValueError(f"gtin must be 8, 12, 13 or 14 digits, got {value!r}")
    digits = [int(c) for c in value.zfill(14)]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(digits[:-1]))
    check = (10 - total % 10) % 10
    if check != digits[-1]:
        raise ValueError(f"gtin {value!r} has a bad check digit: expected {check}, got {digits[-1]}")
    return value.zfill(14)


class PartTypeCreate(PartTypeBase):
    compatible_models: list[str] = Field(default_factory=list, max_length=100)
    materials: list[Material] = Field(default_factory=list, max_length=50)
    test_limits: dict[str, Any] = Field(default_factory=dict)

    _gtin = field_validator("gtin")(classmethod(lambda cls, v: _check_gtin(v)))


class PartTypeUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    category: PartCategory | None = None
    manufacturer: str | None = Field(default=None, max_length=120)
    gtin: str | None = Field(default=None, max_length=14)
    design_life_h: float | None = Field(default=None, gt=0)
    design_life_cycles: int | None = Field(default=None, gt=0)
    industry_average_life_h: float | None = Field(default=None, gt=0)
    new_price: float | None = Field(default=None, ge=0)
    max_reman_generations: int | None = Field(default=None, ge=0, le=50)
    compatible_models: list[str] | None = Field(default=None, max_length=100)
    materials: list[Material] | None = Field(default=None, max_length=50)
    test_limits: dict[str, Any] | None = None

    _gtin = field_validator("gtin")(classmethod(lambda cls, v: _check_gtin(v)))


class PartTypePublic(PartTypeBase):
    id: int
    compatible_models: list[str]
    materials: list[dict[str, Any]]
    test_limits: dict[str, Any]
    mass_kg: float
    created_at: datetime


class PartTypesPublic(SQLModel):
    data: list[PartTypePublic]
    count: int


# --- robots ----------------------------------------------------------------------------------------------------


class RobotBase(SQLModel):
    # MQTT topics carry the serial: no wildcards (+ #), no level separator (/), no spaces or control characters.
    serial: str = Field(min_length=1, max_length=64, index=True, unique=True,
                        schema_extra={"pattern": r"^[!-~]+$"})

    @field_validator("serial")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        bad = sorted({c for c in value if c in "+#/"})
        if bad:
            raise ValueError(f"a robot serial cannot contain {' '.join(bad)} (it is part of MQTT topics)")
        return value
    model: str = Field(min_length=1, max_length=80)
    manufacturer: str = Field(default="", max_length=120)


class Robot(RobotBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    owner_org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    status: RobotStatus = Field(default=RobotStatus.RECEIVED, sa_type=EnumText(RobotStatus))
    mqtt_password_hash: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RobotCreate(RobotBase):
    owner_org_id: int | None = None


class RobotUpdate(SQLModel):
    model: str | None = Field(default=None, min_length=1, max_length=80)
    manufacturer: str | None = Field(default=None, max_length=120)
    owner_org_id: int | None = None


class RobotPublic(RobotBase):
    id: int
    owner_org_id: int | None
    status: RobotStatus
    created_at: datetime


class RobotsPublic(SQLModel):
    data: list[RobotPublic]
    count: int


# --- parts -----------------------------------------------------------------------------------------------------


class PartBase(SQLModel):
    serial: str = Field(min_length=1, max_length=64, index=True)
    part_type_id: int = Field(foreign_key="part_type.id", index=True)
    operating_hours: float = Field(default=0.0, ge=0)
    cycles: int = Field(default=0, ge=0)
    notes: str = Field(default="", max_length=4000)


class Part(PartBase, table=True):
    __table_args__ = (UniqueConstraint("part_type_id", "serial", name="uq_part_type_serial"),)
    id: int | None = Field(default=None, primary_key=True)
    status: PartStatus = Field(default=PartStatus.REGISTERED, sa_type=EnumText(PartStatus), index=True)
    grade: Grade | None = Field(default=None, sa_type=EnumText(Grade))
    quarantined: bool = Field(default=False)
    disposition: Disposition | None = Field(default=None, sa_type=EnumText(Disposition))
    station: str | None = Field(default=None, max_length=80)
    owner_org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    source_robot_id: int | None = Field(default=None, foreign_key="robot.id")
    installed_robot_id: int | None = Field(default=None, foreign_key="robot.id", index=True)
    parent_part_id: int | None = Field(default=None, foreign_key="part.id", index=True)
    reman_count: int = Field(default=0)
    last_test_passed: bool | None = None
    last_test_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_repair_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    event_count: int = Field(default=0)
    chain_head: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PartCreate(PartBase):
    owner_org_id: int | None = None
    source_robot_id: int | None = None


class PartUpdate(SQLModel):
    operating_hours: float | None = Field(default=None, ge=0)
    cycles: int | None = Field(default=None, ge=0)
    notes: str | None = Field(default=None, max_length=4000)


class PartPublic(PartBase):
    id: int
    status: PartStatus
    grade: Grade | None
    quarantined: bool
    disposition: Disposition | None
    station: str | None
    owner_org_id: int | None
    source_robot_id: int | None
    installed_robot_id: int | None
    parent_part_id: int | None
    reman_count: int
    last_test_passed: bool | None
    event_count: int
    chain_head: str | None
    created_at: datetime
    updated_at: datetime


class PartsPublic(SQLModel):
    data: list[PartPublic]
    count: int


# --- the event record --------------------------------------------------------------------------------------------


class PartEvent(SQLModel, table=True):
    """One append-only remanufacturing event, hash-chained to the part's previous event."""

    __tablename__ = "part_event"
    __table_args__ = (UniqueConstraint("part_id", "seq", name="uq_part_event_seq"),
                      # the metrics find each part's latest intake / test / verdict by type
                      Index("ix_part_event_type_part_seq", "type", "part_id", "seq"))
    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    seq: int
    type: EventType = Field(sa_type=EnumText(EventType), index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor: str = Field(max_length=100)
    station: str | None = Field(default=None, max_length=80)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class EventCreate(SQLModel):
    """What a station sends to record one step; fields beyond `type` depend on the type (see docs/api.md)."""

    type: EventType
    station: str | None = Field(default=None, max_length=80)
    note: str | None = Field(default=None, max_length=4000)
    grade: Grade | None = None
    findings: list[str] = Field(default_factory=list, max_length=50)
    operations: list[str] = Field(default_factory=list, max_length=50)
    replaced_part_ids: list[int] = Field(default_factory=list, max_length=50)
    robot_id: int | None = None
    parent_part_id: int | None = None
    position: str | None = Field(default=None, max_length=40)
    passed: bool | None = None
    results: list[dict[str, Any]] = Field(default_factory=list, max_length=200)
    test_run_id: int | None = None
    disposition: Disposition | None = None
    reason: str | None = Field(default=None, max_length=1000)
    operating_hours: float | None = Field(default=None, ge=0)
    cycles: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0, le=1e12,
                               description="cost of this step, in the currency of the part type's new_price")
    energy_kwh: float | None = Field(default=None, ge=0, le=1e9, description="energy this step used")

    @model_validator(mode="after")
    def _fields_fit_type(self) -> EventCreate:
        t = self.type
        if t == EventType.INSPECTED and self.grade is None:
            raise ValueError("an 'inspected' event needs a grade (A, B, C or scrap)")
        if t == EventType.INSTALLED and (self.robot_id is None) == (self.parent_part_id is None):
            raise ValueError("an 'installed' event needs exactly one of robot_id or parent_part_id")
        if t == EventType.TESTED and self.passed is None:
            raise ValueError("a 'tested' event needs 'passed' (true or false)")
        if t == EventType.DISPOSITIONED and self.disposition is None:
            raise ValueError("a 'dispositioned' event needs a disposition (reuse, remanufacture, recycle, scrap)")
        return self


class PartEventPublic(SQLModel):
    id: int
    part_id: int
    seq: int
    type: EventType
    actor: str
    station: str | None
    occurred_at: datetime
    details: dict[str, Any]
    prev_hash: str
    hash: str


class Installation(SQLModel, table=True):
    """A period during which a part sat in a robot or in a parent part (genealogy)."""

    id: int | None = Field(default=None, primary_key=True)
    part_id: int = Field(foreign_key="part.id", index=True)
    robot_id: int | None = Field(default=None, foreign_key="robot.id", index=True)
    parent_part_id: int | None = Field(default=None, foreign_key="part.id", index=True)
    position: str | None = Field(default=None, max_length=40)
    installed_at: datetime = Field(sa_type=UTCDateTime, index=True)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    installed_event_id: int | None = Field(default=None, foreign_key="part_event.id")
    removed_event_id: int | None = Field(default=None, foreign_key="part_event.id")
