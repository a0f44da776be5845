"""Simulated 6-axis robots under test: realistic telemetry with injected faults, published over MQTT or written
straight into the telemetry tables (docs/api.md (Test runs), "Simulator").

The generator functions are pure (numpy only) and deterministic for a seed, so tests use them without a broker:

* motor temperature: first-order heating to a steady-state rise, ``T = T_amb + rise (1 - exp(-t / tau))``, with a
  duty-cycle ripple and sensor noise; ``overheat:Jn`` multiplies joint n's steady-state rise by 2.2;
* motor current: the joint's RMS current modulated by the program's duty cycle, plus noise;
* motor shaft speed: the run-in program's constant speed per joint (vibration is captured at that speed);
* vibration (``j{n}_vib``, m/s²): broadband noise plus shaft harmonics 1x-3x; ``outer_race:Jn`` adds impacts at that
  joint's BPFO (with 1 % slip jitter) ringing a structural resonance at 3 kHz, as a spalled outer race does;
* ISO 9283 poses P1..P5 on the test cube's diagonal plane, ``pose_cycles`` cycles at the end of the run, with a small
  systematic offset (AP) and repeatability noise; ``backlash`` adds a lost-motion offset whose side changes from cycle
  to cycle, which inflates RP and leaves AP alone.

Time: the MQTT parser refuses device times more than 5 minutes ahead of the receive time, so simulated time never
runs ahead of the wall clock. With a speed-up s > 1 the simulated clock starts in the past, at
``now - duration * (1 - 1/s)`` (about ``now - duration`` for a large s), and catches up: after the ``duration / s``
seconds of wall time the publishing takes, both clocks meet. Speed-up 0 publishes as fast as possible with the
window ``[now - duration, now]``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

import numpy as np
import numpy.typing as npt
import typer

from refurb.telemetry.parsing import ROBOT_TOPIC_PREFIX, encode_waveform_binary

FloatArray = npt.NDArray[np.float64]
RESONANCE_HZ = 3000.0
RING_DECAY_PER_S = 1500.0
POSES = ("P1", "P2", "P3", "P4", "P5")
SCALAR_CHUNK = 3600


# --- profile and faults ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bearing:
    """Rolling-bearing geometry (mm) of a joint's motor bearing."""

    n_elements: int
    ball_d_mm: float
    pitch_d_mm: float
    contact_angle_deg: float = 0.0

    def orders(self) -> tuple[float, float]:
        """Return (BPFO, BPFI) in orders of shaft speed (standards.md §3)."""
        ratio = self.ball_d_mm / self.pitch_d_mm * math.cos(math.radians(self.contact_angle_deg))
        return self.n_elements / 2 * (1 - ratio), self.n_elements / 2 * (1 + ratio)

    def as_dict(self) -> dict[str, Any]:
        """Return the geometry as a part type's ``test_limits["bearing"]``."""
        return {"n_elements": self.n_elements, "ball_d_mm": self.ball_d_mm, "pitch_d_mm": self.pitch_d_mm,
                "contact_angle_deg": self.contact_angle_deg}


BEARING_6205 = Bearing(9, 7.94, 39.04)
BEARING_6203 = Bearing(8, 6.75, 28.5)


@dataclass(frozen=True, slots=True)
class JointProfile:
    """What a healthy joint does during the run-in program."""

    rated_current_a: float
    current_rms_a: float
    temp_rise_k: float
    shaft_hz: float
    bearing: Bearing
    tau_s: float = 2700.0
    shaft_velocity_mm_s: tuple[float, float, float] = (0.5, 0.25, 0.12)  # peak velocity of 1x, 2x, 3x
    noise_m_s2: float = 0.2


@dataclass(frozen=True, slots=True)
class RobotProfile:
    """A 6-axis robot: its joints, the ambient temperature, its ISO 9283 test cube and pose behaviour (mm)."""

    joints: tuple[JointProfile, ...]
    ambient_c: float = 23.0
    cube_centre_mm: tuple[float, float, float] = (1000.0, 0.0, 900.0)
    cube_half_side_mm: float = 200.0
    pose_offset_sigma_mm: float = 0.08
    repeatability_sigma_mm: float = 0.008
    backlash_mm: float = 0.12
    duty_cycle_s: float = 24.0

    def test_limits(self, joint: int) -> dict[str, Any]:
        """Return ``PartType.test_limits`` for the motor of a joint (1-based) of this profile."""
        spec = self.joints[joint - 1]
        return {"joint": f"J{joint}", "rated_current_a": spec.rated_current_a, "max_current_ratio": 1.0,
                "max_temp_c": 80.0, "max_temp_rise_k": 45.0, "vibration_class": "iso10816-1_class_i",
                "bearing": spec.bearing.as_dict()}


DEFAULT_PROFILE = RobotProfile(joints=(
    JointProfile(rated_current_a=6.2, current_rms_a=3.4, temp_rise_k=28.0, shaft_hz=15.0, bearing=BEARING_6205),
    JointProfile(rated_current_a=6.2, current_rms_a=3.6, temp_rise_k=32.0, shaft_hz=18.0, bearing=BEARING_6205),
    JointProfile(rated_current_a=6.2, current_rms_a=3.1, temp_rise_k=30.0, shaft_hz=25.0, bearing=BEARING_6205),
    JointProfile(rated_current_a=3.0, current_rms_a=1.5, temp_rise_k=22.0, shaft_hz=30.0, bearing=BEARING_6203),
    JointProfile(rated_current_a=3.0, current_rms_a=1.4, temp_rise_k=20.0, shaft_hz=35.0, bearing=BEARING_6203),
    JointProfile(rated_current_a=3.0, current_rms_a=1.2, temp_rise_k=18.0, shaft_hz=40.0, bearing=BEARING_6203),
))


class FaultKind(StrEnum):
    OUTER_RACE = "outer_race"
    OVERHEAT = "overheat"
    BACKLASH = "backlash"


OVERHEAT_FACTOR = 2.2
OUTER_RACE_IMPACT_M_S2 = 2.0


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected fault; ``joint`` is 1-based (None for ``backlash``, which shows in the poses)."""

    kind: FaultKind
    joint: int | None = None

    def __str__(self) -> str:
        return self.kind.value + (f":J{self.joint}" if self.joint else "")


_FAULT_RE = re.compile(r"^\s*([a-z_]+)\s*(?::\s*[jJ]?([1-9]))?\s*$")


def parse_fault(text: str, *, joint_count: int = 6) -> Fault:
    """Parse ``outer_race:J3``, ``overheat:J2`` or ``backlash`` (ValueError names what is wrong)."""
    match = _FAULT_RE.match(text)
    kinds = ", ".join(k.value for k in FaultKind)
    if not match:
        raise ValueError(f"fault {text!r}: expected KIND or KIND:Jn with KIND one of {kinds}")
    try:
        kind = FaultKind(match.group(1))
    except ValueError:
        raise ValueError(f"fault {text!r}: unknown kind; use one of {kinds}") from None
    joint = int(match.group(2)) if match.group(2) else None
    if kind in (FaultKind.OUTER_RACE, FaultKind.OVERHEAT) and joint is None:
        raise ValueError(f"fault {text!r}: {kind.value} needs a joint, e.g. {kind.value}:J3")
    if joint is not None and joint > joint_count:
        raise ValueError(f"fault {text!r}: the robot has joints J1..J{joint_count}")
    return Fault(kind, joint)


def _has(faults: Iterable[Fault], kind: FaultKind, joint: int | None = None) -> bool:
    return any(f.kind == kind and (joint is None or f.joint == joint) for f in faults)


# --- pure generators ---------------------------------------------------------------------------------------------


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def temperature_c(profile: RobotProfile, joint: int, t_s: FloatArray, *, faults: tuple[Fault, ...] = (),
                  rng: np.random.Generator) -> FloatArray:
    """First-order heating of joint ``joint``'s motor from ambient, ``t_s`` seconds after the run started."""
    spec = profile.joints[joint - 1]
    rise = spec.temp_rise_k * (OVERHEAT_FACTOR if _has(faults, FaultKind.OVERHEAT, joint) else 1.0)
    ripple = 0.3 * np.sin(2 * np.pi * t_s / profile.duty_cycle_s + joint)
    return profile.ambient_c + rise * (1 - np.exp(-t_s / spec.tau_s)) + ripple + rng.normal(0, 0.1, t_s.shape)


def current_a(profile: RobotProfile, joint: int, t_s: FloatArray, *, rng: np.random.Generator) -> FloatArray:
    """Motor current magnitude: the joint's RMS current shaped by the program's duty cycle, plus 5 % noise."""
    spec = profile.joints[joint - 1]
    depth = 0.35
    shape = (1 + depth * np.sin(2 * np.pi * t_s / profile.duty_cycle_s + 0.7 * joint)) / math.sqrt(1 + depth**2 / 2)
    return np.abs(spec.current_rms_a * shape + rng.normal(0, 0.05 * spec.current_rms_a, t_s.shape))


def shaft_speed_hz(profile: RobotProfile, joint: int, t_s: FloatArray, *, rng: np.random.Generator) -> FloatArray:
    """Motor shaft speed of the run-in program (constant per joint, 0.5 % jitter)."""
    return profile.joints[joint - 1].shaft_hz * (1 + rng.normal(0, 0.005, t_s.shape))


def vibration_m_s2(profile: RobotProfile, joint: int, n: int, rate_hz: float, *, faults: tuple[Fault, ...] = (),
                   rng: np.random.Generator) -> FloatArray:
    """One capture of joint acceleration at the run-in speed: noise + shaft harmonics (+ outer-race impacts)."""
    spec = profile.joints[joint - 1]
    t = np.arange(n) / rate_hz
    f_r = spec.shaft_hz
    accel = rng.normal(0, spec.noise_m_s2, n)
    for order, velocity_mm_s in enumerate(spec.shaft_velocity_mm_s, start=1):
        if order * f_r < rate_hz / 2:
            amplitude = velocity_mm_s / 1000 * 2 * np.pi * order * f_r  # a = v 2 pi f
            accel += amplitude * np.sin(2 * np.pi * order * f_r * t + rng.uniform(0, 2 * np.pi))
    if _has(faults, FaultKind.OUTER_RACE, joint):
        bpfo_hz = spec.bearing.orders()[0] * f_r
        intervals = rng.normal(1 / bpfo_hz, 0.01 / bpfo_hz, int(n / rate_hz * bpfo_hz) + 2)  # ~1 % slip
        impacts = (np.cumsum(intervals) - rng.uniform(0, 1 / bpfo_hz)) * rate_hz
        impacts = impacts[(impacts >= 0) & (impacts < n)].astype(int)
        pulses = np.zeros(n)
        pulses[impacts] = OUTER_RACE_IMPACT_M_S2
        resonance_hz = min(RESONANCE_HZ, 0.3 * rate_hz)
        ring_t = np.arange(int(6 / RING_DECAY_PER_S * rate_hz) + 1) / rate_hz
        ring = np.exp(-RING_DECAY_PER_S * ring_t) * np.sin(2 * np.pi * resonance_hz * ring_t)
        accel += np.convolve(pulses, ring)[:n]
    return accel


def cube_poses(profile: RobotProfile) -> dict[str, tuple[float, float, float]]:
    """Commanded P1..P5: the cube's centre and 80 % towards the corners of its diagonal plane (ISO 9283)."""
    cx, cy, cz = profile.cube_centre_mm
    a = 0.8 * profile.cube_half_side_mm
    corners = [(-a, -a, -a), (a, a, -a), (a, a, a), (-a, -a, a)]
    out = {"P1": (cx, cy, cz)}
    for name, (dx, dy, dz) in zip(POSES[1:], corners, strict=True):
        out[name] = (cx + dx, cy + dy, cz + dz)
    return out


@dataclass(frozen=True, slots=True)
class PoseRecord:
    pose: str
    cycle: int
    ts_ms: int
    commanded_xyz_mm: tuple[float, float, float]
    attained_xyz_mm: tuple[float, float, float]


def pose_records(profile: RobotProfile, *, cycles: int, first_ts_ms: int, spacing_s: float,
                 faults: tuple[Fault, ...] = (), seed: int = 0) -> list[PoseRecord]:
    """ISO 9283 cycles: each cycle visits P1..P5; attained = commanded + fixed offset + noise (+ backlash)."""
    commanded = cube_poses(profile)
    calibration = _rng(seed, 900)  # the robot's systematic pose errors: the same in every cycle and every run
    offsets = {p: calibration.normal(0, profile.pose_offset_sigma_mm, 3) for p in POSES}
    directions = {p: (v := calibration.normal(0, 1, 3)) / np.linalg.norm(v) for p in POSES}
    rng = _rng(seed, 901)
    backlash = _has(faults, FaultKind.BACKLASH)
    sigma = profile.repeatability_sigma_mm * (1.5 if backlash else 1.0)
    out = []
    for index, (cycle, pose) in enumerate(itertools.product(range(1, cycles + 1), POSES)):
        attained = np.asarray(commanded[pose]) + offsets[pose] + rng.normal(0, sigma, 3)
        if backlash:  # lost motion: the joint settles on one flank or the other
            attained += rng.choice((-0.5, 0.5)) * profile.backlash_mm * directions[pose]
        out.append(PoseRecord(pose, cycle, first_ts_ms + int(round(index * spacing_s * 1000)), commanded[pose],
                              (round(float(attained[0]), 4), round(float(attained[1]), 4),
                               round(float(attained[2]), 4))))
    return out


# --- a whole run -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate: a robot profile with faults, over ``duration_s`` from ``start_ms`` (epoch ms)."""

    start_ms: int
    duration_s: float
    faults: tuple[Fault, ...] = ()
    profile: RobotProfile = DEFAULT_PROFILE
    sample_period_s: float = 1.0
    capture_every_s: float = 600.0
    capture_s: float = 4.0
    block_s: float = 1.0
    vib_rate_hz: float = 10_240.0
    pose_cycles: int = 30
    pose_spacing_s: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("duration_s", "sample_period_s", "capture_every_s", "capture_s", "block_s", "vib_rate_hz",
                     "pose_spacing_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.pose_cycles < 0:
            raise ValueError("pose_cycles must be >= 0")
        if self.capture_s < self.block_s:
            raise ValueError("capture_s must be at least block_s")

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(round(self.duration_s * 1000))

    @property
    def joint_count(self) -> int:
        return len(self.profile.joints)


@dataclass(frozen=True, slots=True, eq=False)
class ScalarFrame:
    """Samples at ``ts_ms`` (n,) for each key: ``values[key]`` has shape (n,)."""

    ts_ms: npt.NDArray[np.int64]
    values: dict[str, FloatArray]


@dataclass(frozen=True, slots=True, eq=False)
class WaveformRecord:
    channel: str
    t0_ms: int
    rate_hz: float
    unit: str
    values: npt.NDArray[np.float32]

    @property
    def end_ms(self) -> int:
        return self.t0_ms + int(math.ceil(len(self.values) / self.rate_hz * 1000))


def scalar_frames(config: SimulationConfig) -> Iterator[ScalarFrame]:
    """Yield the run's scalar samples in time order, in chunks of at most 3600 timestamps."""
    n_total = int(config.duration_s // config.sample_period_s) + 1
    for chunk, first in enumerate(range(0, n_total, SCALAR_CHUNK)):
        index = np.arange(first, min(first + SCALAR_CHUNK, n_total))
        t_s = (index * config.sample_period_s).astype(np.float64)
        ts_ms = config.start_ms + np.round(t_s * 1000).astype(np.int64)
        values: dict[str, FloatArray] = {}
        for joint in range(1, config.joint_count + 1):
            values[f"j{joint}_temp_c"] = temperature_c(config.profile, joint, t_s, faults=config.faults,
                                                       rng=_rng(config.seed, 1, joint, chunk))
            values[f"j{joint}_current_a"] = current_a(config.profile, joint, t_s,
                                                      rng=_rng(config.seed, 2, joint, chunk))
            values[f"j{joint}_speed_hz"] = shaft_speed_hz(config.profile, joint, t_s,
                                                          rng=_rng(config.seed, 3, joint, chunk))
        yield ScalarFrame(ts_ms=ts_ms, values=values)


def capture_times_ms(config: SimulationConfig) -> list[int]:
    """Start times of the vibration captures: every ``capture_every_s`` from half that after the start."""
    out = []
    t = config.capture_every_s / 2
    while t + config.capture_s <= config.duration_s:
        out.append(config.start_ms + int(round(t * 1000)))
        t += config.capture_every_s
    return out


def waveform_records(config: SimulationConfig) -> Iterator[WaveformRecord]:
    """Yield the vibration blocks of every capture (all joints), sorted by block end time."""
    n_block = int(round(config.block_s * config.vib_rate_hz))
    blocks_per_capture = max(1, int(round(config.capture_s / config.block_s)))
    for k, t0_ms in enumerate(capture_times_ms(config)):
        batch: list[WaveformRecord] = []
        for joint in range(1, config.joint_count + 1):
            signal = vibration_m_s2(config.profile, joint, n_block * blocks_per_capture, config.vib_rate_hz,
                                    faults=config.faults, rng=_rng(config.seed, 4, joint, k)).astype(np.float32)
            for b in range(blocks_per_capture):
                batch.append(WaveformRecord(channel=f"j{joint}_vib",
                                            t0_ms=t0_ms + int(round(b * n_block / config.vib_rate_hz * 1000)),
                                            rate_hz=config.vib_rate_hz, unit="m/s2",
                                            values=signal[b * n_block:(b + 1) * n_block]))
        yield from sorted(batch, key=lambda r: (r.end_ms, r.channel))


def run_pose_records(config: SimulationConfig) -> list[PoseRecord]:
    """The ISO 9283 cycles, placed at the end of the run (warm robot), all inside the window."""
    if config.pose_cycles == 0:
        return []
    span_ms = int(round(config.pose_cycles * len(POSES) * config.pose_spacing_s * 1000))
    first = max(config.start_ms, config.end_ms - span_ms - 1000)
    return pose_records(config.profile, cycles=config.pose_cycles, first_ts_ms=first,
                        spacing_s=config.pose_spacing_s, faults=config.faults, seed=config.seed)


# --- MQTT messages -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message due at simulated time ``due_ms`` (never before the data it carries was taken)."""

    due_ms: int
    topic: str
    payload: bytes
    kind: str
    records: int


def messages(config: SimulationConfig, serial: str) -> Iterator[Message]:
    """Yield every message of the run in simulated-time order (lazily: memory stays bounded)."""
    base = f"{ROBOT_TOPIC_PREFIX}{serial}"
    seq = itertools.count(1)

    def telemetry() -> Iterator[Message]:
        for frame in scalar_frames(config):
            keys = list(frame.values)
            columns = [np.round(frame.values[k], 3) for k in keys]
            for i, ts in enumerate(frame.ts_ms.tolist()):
                values = {k: float(col[i]) for k, col in zip(keys, columns, strict=True)}
                payload = json.dumps({"ts": ts, "values": values, "seq": next(seq)}, separators=(",", ":"))
                yield Message(ts, f"{base}/telemetry", payload.encode(), "telemetry", len(values))

    def waveforms() -> Iterator[Message]:
        for record in waveform_records(config):
            payload = encode_waveform_binary(record.t0_ms, record.rate_hz, record.unit, record.values)
            yield Message(record.end_ms, f"{base}/waveform/{record.channel}", payload, "waveform", 1)

    def poses() -> Iterator[Message]:
        for record in run_pose_records(config):
            body = {"ts": record.ts_ms, "pose": record.pose, "cycle": record.cycle,
                    "commanded": dict(zip("xyz", record.commanded_xyz_mm, strict=True)),
                    "attained": dict(zip("xyz", record.attained_xyz_mm, strict=True))}
            yield Message(record.ts_ms, f"{base}/poses", json.dumps(body).encode(), "poses", 1)

    yield from heapq.merge(telemetry(), waveforms(), poses(), key=lambda m: m.due_ms)


def simulated_start_ms(now_ms: int, duration_s: float, speedup: float) -> int:
    """Start of simulated time so that it never runs ahead of the wall clock (see the module docstring)."""
    if speedup < 0 or not math.isfinite(speedup):
        raise ValueError("speedup must be 0 (as fast as possible) or >= 1")
    if speedup == 0:
        return now_ms - int(round(duration_s * 1000))
    if speedup < 1:
        raise ValueError("speedup must be 0 (as fast as possible) or >= 1")
    return now_ms - int(round(duration_s * 1000 * (1 - 1 / speedup)))


# --- direct insert (tests, demo history) -------------------------------------------------------------------------


@dataclass(slots=True)
class SimulationCounts:
    samples: int = 0
    waveform_blocks: int = 0
    waveform_samples: int = 0
    poses: int = 0
    messages: int = 0
    window_start_ms: int = 0
    window_end_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def insert_simulated_run(session: Any, robot_id: int, config: SimulationConfig, *, batch_rows: int = 5000
                         ) -> SimulationCounts:
    """Generate a run's data and write it straight into the telemetry tables (no broker); the caller commits.

    Insert-or-ignore on the telemetry identities, so seeding the same history twice stores it once.
    """
    from refurb.telemetry.models import PoseSample, Sample, WaveformBlock
    from refurb.telemetry.service import insert_ignore

    received_at_ms = int(time.time() * 1000)
    counts = SimulationCounts(window_start_ms=config.start_ms, window_end_ms=config.end_ms)
    rows: list[dict[str, Any]] = []
    for frame in scalar_frames(config):
        ts_list = frame.ts_ms.tolist()
        for key, column in frame.values.items():
            rows.extend({"robot_id": robot_id, "key": key, "ts_ms": ts, "value": value, "text": None, "seq": None,
                         "received_at_ms": received_at_ms}
                        for ts, value in zip(ts_list, column.tolist(), strict=True))
            if len(rows) >= batch_rows:
                counts.samples += insert_ignore(session, Sample, rows)
                rows = []
    counts.samples += insert_ignore(session, Sample, rows)
    blocks: list[dict[str, Any]] = []
    for record in waveform_records(config):
        values = np.ascontiguousarray(record.values, dtype="<f4")
        blocks.append({"robot_id": robot_id, "channel": record.channel, "t0_ms": record.t0_ms,
                       "rate_hz": record.rate_hz, "unit": record.unit, "n_samples": int(values.size),
                       "data": values.tobytes(), "received_at_ms": received_at_ms})
        counts.waveform_samples += int(values.size)
        if len(blocks) >= 24:
            counts.waveform_blocks += insert_ignore(session, WaveformBlock, blocks)
            blocks = []
    counts.waveform_blocks += insert_ignore(session, WaveformBlock, blocks)
    poses = [{"robot_id": robot_id, "ts_ms": r.ts_ms, "pose": r.pose, "cycle": r.cycle,
              "commanded_x_mm": r.commanded_xyz_mm[0], "commanded_y_mm": r.commanded_xyz_mm[1],
              "commanded_z_mm": r.commanded_xyz_mm[2], "attained_x_mm": r.attained_xyz_mm[0],
              "attained_y_mm": r.attained_xyz_mm[1], "attained_z_mm": r.attained_xyz_mm[2], "orientation": None,
              "received_at_ms": received_at_ms}
             for r in run_pose_records(config)]
    counts.poses = insert_ignore(session, PoseSample, poses)
    return counts


# --- publishing over MQTT ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MqttTarget:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(url: str) -> MqttTarget:
    """Read ``mqtt://[user[:password]@]host[:port]`` (``mqtts://`` for TLS, default ports 1883 / 8883)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parsed.hostname:
        raise ValueError(f"MQTT URL {url!r}: expected mqtt://[user:password@]host[:port]")
    tls = parsed.scheme in ("mqtts", "ssl")
    return MqttTarget(host=parsed.hostname, port=parsed.port or (8883 if tls else 1883), tls=tls,
                      username=unquote(parsed.username) if parsed.username else None,
                      password=unquote(parsed.password) if parsed.password else None)


def read_credentials(path: Path, serial: str) -> tuple[str, str]:
    """Read a robot's MQTT username and password from a credentials file.

    Accepted forms: JSON ``{"username": ..., "password": ...}``; JSON keyed by serial
    ``{"R-1": {"username": ..., "password": ...}}`` or ``{"R-1": "password"}``; text lines ``username:password``
    (the line whose username is the serial, or the only line).
    """
    text = path.read_text(encoding="utf-8").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        if "password" in data:
            return str(data.get("username") or serial), str(data["password"])
        entry = data.get(serial)
        if isinstance(entry, dict) and "password" in entry:
            return str(entry.get("username") or serial), str(entry["password"])
        if isinstance(entry, str):
            return serial, entry
        raise ValueError(f"{path}: no credentials for robot {serial!r}")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    pairs = [line.split(":", 1) for line in lines if ":" in line]
    for user, password in pairs:
        if user == serial:
            return user, password
    if len(pairs) == 1:
        return pairs[0][0], pairs[0][1]
    raise ValueError(f"{path}: no 'username:password' line for robot {serial!r}")


@dataclass(slots=True)
class PublishStats:
    messages: int = 0
    samples: int = 0
    waveform_blocks: int = 0
    poses: int = 0
    window_start_ms: int = 0
    window_end_ms: int = 0
    wall_s: float = 0.0


def publish(config: SimulationConfig, serial: str, target: MqttTarget, *, speedup: float = 0.0,
            client_id: str | None = None, max_in_flight: int = 1000, connect_timeout_s: float = 10.0,
            on_progress: Callable[[PublishStats], None] | None = None,
            clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> PublishStats:
    """Publish a simulated run at QoS 1, paced so simulated time is ``start_ms + speedup * elapsed wall time``.

    ``config.start_ms`` should come from :func:`simulated_start_ms` so no message is ever dated in the future. The
    robot's retained status is set online, and offline at the end (also its MQTT will).
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"refurb-sim-{serial}",
                         protocol=mqtt.MQTTv311)
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()
    status_topic = f"{ROBOT_TOPIC_PREFIX}{serial}/status"
    client.will_set(status_topic, b"offline", qos=1, retain=True)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if getattr(reason_code, "is_failure", False):
            refused.append(str(reason_code))
        connected.set()

    client.on_connect = on_connect
    client.connect(target.host, target.port, keepalive=30)
    client.loop_start()
    stats = PublishStats(window_start_ms=config.start_ms, window_end_ms=config.end_ms)
    try:
        if not connected.wait(connect_timeout_s):
            raise ConnectionError(f"no answer from the MQTT broker at {target.host}:{target.port}")
        if refused:
            raise ConnectionError(f"the MQTT broker refused the connection: {refused[0]}")
        client.publish(status_topic, b"online", qos=1, retain=True)
        pending: deque[Any] = deque()
        wall0 = clock()
        for message in messages(config, serial):
            if speedup > 0:
                wait_s = wall0 + (message.due_ms - config.start_ms) / 1000 / speedup - clock()
                if wait_s > 0:
                    sleep(wait_s)
            info = client.publish(message.topic, message.payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                raise ConnectionError(f"publish to {message.topic} failed: {mqtt.error_string(info.rc)}")
            pending.append(info)
            while len(pending) > max_in_flight:  # QoS 1 flow control: keep paho's queue bounded
                pending.popleft().wait_for_publish(timeout=60)
            stats.messages += 1
            if message.kind == "telemetry":
                stats.samples += message.records
            elif message.kind == "waveform":
                stats.waveform_blocks += 1
            else:
                stats.poses += 1
            if on_progress is not None and stats.messages % 1000 == 0:
                on_progress(stats)
        while pending:
            info = pending.popleft()
            info.wait_for_publish(timeout=60)
            if not info.is_published():
                raise ConnectionError("the broker did not acknowledge every message (QoS 1) within 60 s")
        client.publish(status_topic, b"offline", qos=1, retain=True).wait_for_publish(timeout=10)
        stats.wall_s = clock() - wall0
        return stats
    finally:
        client.loop_stop()
        client.disconnect()


# --- the `refurb simulate` command --------------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")


def parse_duration_s(text: str) -> float:
    """Read ``16h``, ``90m``, ``45s``, ``2d`` or a number of seconds."""
    match = _DURATION_RE.match(text)
    if not match:
        raise ValueError(f"duration {text!r}: use e.g. 16h, 90m, 600s or 2d")
    unit = match.group(2) or "s"
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[unit]
    if seconds <= 0:
        raise ValueError("duration must be > 0")
    return seconds


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def simulate_command(
    serial: Annotated[str, typer.Argument(help="robot serial (registered in refurb)")],
    duration: Annotated[str, typer.Option(help="simulated run length: 16h, 90m, 600s")] = "1h",
    speedup: Annotated[float, typer.Option(help="simulated seconds per wall second; 0 = as fast as possible")] = 60.0,
    fault: Annotated[list[str] | None, typer.Option(
        help="inject a fault (repeatable): outer_race:J3, overheat:J2, backlash")] = None,
    sample_period_s: Annotated[float, typer.Option(help="seconds between scalar samples (simulated)")] = 1.0,
    capture_every_s: Annotated[float, typer.Option(help="seconds between vibration captures (simulated)")] = 600.0,
    vib_rate_hz: Annotated[float, typer.Option(help="vibration sampling rate")] = 10_240.0,
    pose_cycles: Annotated[int, typer.Option(help="ISO 9283 cycles at the end of the run (0 = none)")] = 30,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 0,
    mqtt_url: Annotated[str | None, typer.Option(help="broker URL; default REFURB_MQTT_URL or the embedded one")]
    = None,
    username: Annotated[str | None, typer.Option(help="MQTT username (default: the robot serial)")] = None,
    password: Annotated[str | None, typer.Option(help="MQTT password")] = None,
    credentials_file: Annotated[Path | None, typer.Option(
        help="file with the robot's MQTT credentials (JSON or username:password lines)")] = None,
    direct: Annotated[bool, typer.Option(
        help="write into the database instead of publishing (seeding history; no broker)")] = False,
) -> None:
    """Simulate a 6-axis robot under test and publish its telemetry over MQTT (QoS 1)."""
    from refurb.config import get_settings

    try:
        duration_s = parse_duration_s(duration)
        faults = tuple(parse_fault(f) for f in (fault or []))
        now_ms = int(time.time() * 1000)
        start_ms = simulated_start_ms(now_ms, duration_s, 0.0 if direct else speedup)
        config = SimulationConfig(start_ms=start_ms, duration_s=duration_s, faults=faults,
                                  sample_period_s=sample_period_s, capture_every_s=capture_every_s,
                                  vib_rate_hz=vib_rate_hz, pose_cycles=pose_cycles, seed=seed)
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    settings = get_settings()
    label = ", ".join(str(f) for f in faults) or "healthy"
    typer.echo(f"robot {serial} ({label}): data window {_iso(config.start_ms)} .. {_iso(config.end_ms)}")
    typer.echo(f"start its test run with window_start={_iso(config.start_ms)} and finish it after the data is in")
    if direct:
        counts = seed_robot_history(settings, serial, config)
        typer.echo(f"wrote {counts.samples} samples, {counts.waveform_blocks} waveform blocks, "
                   f"{counts.poses} poses")
        return
    try:
        target = parse_mqtt_url(mqtt_url or settings.mqtt_url or f"mqtt://127.0.0.1:{settings.embedded_mqtt_port}")
        if credentials_file is not None:
            username, password = read_credentials(credentials_file, serial)
    except (ValueError, OSError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if username is not None or password is not None:
        target = replace(target, username=username or serial, password=password)
    pace = f"{speedup:g}x: about {duration_s / speedup / 60:.1f} min of wall time" if speedup else "full speed"
    typer.echo(f"publishing to {target.host}:{target.port} at {pace}")

    def progress(stats: PublishStats) -> None:
        if stats.messages % 20_000 == 0:
            typer.echo(f"  {stats.messages} messages ({stats.samples} samples, {stats.waveform_blocks} blocks)")

    try:
        stats = publish(config, serial, target, speedup=speedup, on_progress=progress)
    except (ConnectionError, OSError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"published {stats.messages} messages: {stats.samples} samples, {stats.waveform_blocks} waveform "
               f"blocks, {stats.poses} poses in {stats.wall_s:.1f} s")


def seed_robot_history(settings: Any, serial: str, config: SimulationConfig) -> SimulationCounts:
    """Write a simulated run for the robot with this serial into the configured database (committed)."""
    from refurb.db import make_engine, session_scope
    from refurb.parts import service as parts_service

    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            robot = parts_service.find_robot_by_serial(session, serial)
            if robot is None or robot.id is None:
                typer.secho(f"error: robot {serial!r} is not registered", fg=typer.colors.RED, err=True)
                raise typer.Exit(1)
            return insert_simulated_run(session, robot.id, config)
    finally:
        engine.dispose()
