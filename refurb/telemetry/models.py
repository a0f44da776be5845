"""Tables of the telemetry domain: time series, waveform blocks, poses, connectivity, sequence tracking,
quarantine, ingest counters and retention aggregates. Identities are unique keys so redelivered messages insert
nothing."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from refurb.db import EnumText, UTCDateTime, utcnow


class Sample(SQLModel, table=True):
    """One scalar reading; identity (robot, key, ts).

    Times are epoch milliseconds (UTC) like the device's ``ts``: one integer per row keeps the bulk insert cheap.
    """

    __tablename__ = "telemetry_sample"
    robot_id: int = Field(foreign_key="robot.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=64)
    ts_ms: int = Field(sa_type=BigInteger, primary_key=True)
    value: float | None = None
    text: str | None = Field(default=None, max_length=64)
    seq: int | None = Field(default=None, sa_type=BigInteger)
    received_at_ms: int = Field(sa_type=BigInteger)


class SampleAggregate(SQLModel, table=True):
    """Downsampled numeric samples kept by retention after the raw rows are dropped (one row per bucket).

    ``bucket_ms`` is the bucket start (a multiple of ``interval_ms`` since the epoch); ``avg = sum / count``.
    Waveform channels are kept as key ``waveform:<channel>:rms`` (one value per block).
    """

    __tablename__ = "telemetry_sample_agg"
    robot_id: int = Field(foreign_key="robot.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=100)
    interval_ms: int = Field(sa_type=BigInteger, primary_key=True)
    bucket_ms: int = Field(sa_type=BigInteger, primary_key=True)
    count: int
    min: float
    max: float
    sum: float


class WaveformBlock(SQLModel, table=True):
    """A block of high-rate samples stored as little-endian float32 (one row per block)."""

    __tablename__ = "telemetry_waveform"
    __table_args__ = (UniqueConstraint("robot_id", "channel", "t0_ms", name="uq_waveform_identity"),)
    id: int | None = Field(default=None, primary_key=True)
    robot_id: int = Field(foreign_key="robot.id", index=True)
    channel: str = Field(max_length=64)
    t0_ms: int = Field(sa_type=BigInteger)
    rate_hz: float
    unit: str = Field(default="", max_length=16)
    n_samples: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at_ms: int = Field(sa_type=BigInteger)


class PoseSample(SQLModel, table=True):
    """One attained pose for ISO 9283; identity (robot, pose, cycle, ts)."""

    __tablename__ = "telemetry_pose"
    __table_args__ = (UniqueConstraint("robot_id", "pose", "cycle", "ts_ms", name="uq_pose_identity"),)
    id: int | None = Field(default=None, primary_key=True)
    robot_id: int = Field(foreign_key="robot.id", index=True)
    ts_ms: int = Field(sa_type=BigInteger)
    pose: str = Field(max_length=64)
    cycle: int
    commanded_x_mm: float
    commanded_y_mm: float
    commanded_z_mm: float
    attained_x_mm: float
    attained_y_mm: float
    attained_z_mm: float
    orientation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    received_at_ms: int = Field(sa_type=BigInteger)


class Connectivity(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class RobotConnection(SQLModel, table=True):
    """Connectivity and last-seen per robot (from its retained status/will and from its data)."""

    __tablename__ = "robot_connection"
    robot_id: int = Field(foreign_key="robot.id", primary_key=True)
    state: Connectivity = Field(default=Connectivity.OFFLINE, sa_type=EnumText(Connectivity))
    state_changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SeenSeq(SQLModel, table=True):
    """Message sequence numbers seen per robot, for the gap detector (missing ranges = loss upstream)."""

    __tablename__ = "telemetry_seq"
    robot_id: int = Field(foreign_key="robot.id", primary_key=True)
    seq: int = Field(sa_type=BigInteger, primary_key=True)
    received_at_ms: int = Field(sa_type=BigInteger)


class QuarantinedMessage(SQLModel, table=True):
    """An MQTT message refurb refused, kept once with the reason and the (truncated) raw payload.

    ``digest`` is SHA-256 over topic and full payload: a redelivered poison message adds no second row.
    """

    __tablename__ = "telemetry_quarantine"
    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    topic: str = Field(max_length=300)
    serial: str | None = Field(default=None, max_length=64, index=True)
    reason: str = Field(max_length=40, index=True)
    detail: str = Field(default="", max_length=500)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    payload_size: int


class IngestCounter(SQLModel, table=True):
    """Counters persisted by each ingest worker at every commit, so any process can report them."""

    __tablename__ = "ingest_counter"
    worker_id: str = Field(primary_key=True, max_length=100)
    counters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
