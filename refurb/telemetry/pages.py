"""Pages of the telemetry domain: the robot on the test bench (thin: services -> dashboards.figures -> template).

``GET /robots/{id}`` shows identity, connectivity, the parts installed now, the test runs with their checks, alarms,
live telemetry charts, the ISO 9283 pose scatter and the vibration spectra with the bearing defect frequencies.
``GET /robots/{id}/live`` streams new samples to the page as server-sent events: it polls the database about once a
second for samples newer than the last one sent per key, in bounded batches, adds a status event (connectivity,
alarms, runs) every few seconds and a heartbeat comment when idle, and stops when the client goes away or after
``LIVE_MAX_S`` (the browser's EventSource then reconnects and resumes from the ``Last-Event-ID`` it was given).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import numpy as np
import plotly.graph_objects as go
from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from dashboards import figures
from refurb import auth
from refurb.auth import Role
from refurb.db import SessionDep, session_scope
from refurb.errors import ForbiddenError, RefurbError, ValidationError
from refurb.parts import service as parts_service
from refurb.parts.models import PartCategory, Robot
from refurb.telemetry import analysis, runs_service
from refurb.telemetry import service as telemetry_service
from refurb.telemetry.runs import (
    ROBOT_CHECKS,
    BearingGeometry,
    CheckType,
    RunState,
    TestRun,
    current_key,
    speed_key,
    temp_key,
    vibration_channel,
)
from refurb.web import PageUser, optional_page_user, render

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
OPERATORS = (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN)

DEFAULT_JOINTS = 6
NO_RUN_WINDOW_MS = 6 * 3_600_000  # without a test run the charts show the last six hours
CHART_POINTS = 720  # per trace on the first render: longer windows are averaged per bucket in SQL
RECENT_RAW_MS = 10 * 60_000  # ...except the last ten minutes of an open window, sent raw: the page follows them
LIVE_OVERLAP_MS = 5_000  # the first render stops this far back; the stream sends the rest (ingest commits late)
RUN_HISTORY = 20
ALARM_ROWS = 20
SPEED_WINDOW_MS = runs_service.SPEED_WINDOW_MS  # shaft speed samples this close to a capture describe it
PSD_NPERSEG = 2048  # about 5 Hz lines over the whole band: enough to see resonances, light to send
CHARTS = (("temp", "Motor temperature", "°C", temp_key), ("current", "Motor current", "A", current_key))

LIVE_POLL_S = 1.0
LIVE_STATUS_S = 5.0
LIVE_HEARTBEAT_S = 15.0
LIVE_MAX_S = 900.0
LIVE_BATCH_ROWS = 5000
LIVE_MAX_KEYS = 36
LIVE_MAX_POINTS = 6000  # per trace in the browser: older points scroll out
LIVE_MAX_FAILURES = 5
FAR_FUTURE_MS = 253_402_300_799_999  # 9999-12-31: "no upper bound" for the samples query
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _unit(unit: str) -> str:
    return {"m/s2": "m/s²", "": "m/s²"}.get(unit, unit)


def _figure(fig: Any) -> dict[str, Any]:
    """Plain JSON of a figure for the page, without its template (the page sends the one template once)."""
    out: dict[str, Any] = json.loads(fig.to_json())
    out["layout"].pop("template", None)
    return out


def _template() -> dict[str, Any]:
    """The plotly template of the figure builders' layout, as JSON (robot.js puts it back on each figure)."""
    empty = go.Figure(layout={"template": figures.LAYOUT["template"]})
    return json.loads(empty.to_json())["layout"]["template"]  # type: ignore[no-any-return]


def _sig(values: Any, digits: int = 4) -> list[float]:
    """Round to significant digits: spectra and averages lose nothing visible and the page halves in size."""
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64).tolist()]


# --- the robot page ----------------------------------------------------------------------------------------------


@router.get("/robots/{robot_id}", response_class=HTMLResponse)
def robot_page(robot_id: int, request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    robot = parts_service.get_robot(session, robot_id, viewer=user)
    return render(request, "robot.html", **robot_context(session, robot, user))


def _focus_window(focus: TestRun | None, now_ms: int) -> tuple[int, int, bool]:
    """The charts' window [start, end) and whether it is still open (live data continues it)."""
    if focus is not None and focus.state != RunState.RUNNING and focus.window_end_ms is not None:
        return focus.window_start_ms, focus.window_end_ms + 1, False
    end = now_ms - LIVE_OVERLAP_MS
    start = focus.window_start_ms if focus is not None else end - NO_RUN_WINDOW_MS
    return min(start, end - 60_000), end, True


def robot_context(session: Session, robot: Robot, user: auth.User) -> dict[str, Any]:
    """Everything the robot page shows, from the services of the parts and telemetry domains."""
    assert robot.id is not None
    now_ms = _now_ms()
    runs, run_count = runs_service.list_runs(session, viewer=user, robot_id=robot.id, limit=RUN_HISTORY)
    running = next((r for r in runs if r.state == RunState.RUNNING), None)
    focus = running or (runs[0] if runs else None)
    start_ms, end_ms, open_window = _focus_window(focus, now_ms)
    joint_count = int(focus.spec.get("joint_count", DEFAULT_JOINTS)) if focus else DEFAULT_JOINTS
    joints = list(range(1, joint_count + 1))
    at_ms = min(end_ms, now_ms)
    motors = {p.joint: p for p in runs_service.parts_in_window(session, robot.id, start_ms=at_ms - 1, end_ms=at_ms)
              if p.joint and p.category == PartCategory.SERVO_MOTOR}
    charts, interval_ms = _charts(session, robot.id, joints, start_ms, end_ms, motors, open_window=open_window)
    since_ms = max(end_ms, now_ms - LIVE_OVERLAP_MS)
    may_operate = user.role in OPERATORS
    templates = []
    if may_operate:
        rows, _ = runs_service.list_templates(session, robot_model=robot.model, limit=100)
        templates = [t for t in rows if t.active and t.part_type_id is None]
    focus_public = jsonable_encoder(runs_service.run_public(session, focus)) if focus else None
    orgs = {o.id: o.name for o in auth.list_organisations(session)} if robot.owner_org_id else {}
    alarms, _ = runs_service.list_alarms(session, viewer=user, robot_id=robot.id, limit=ALARM_ROWS)
    tree = parts_service.robot_parts_at(session, robot)
    page = {
        "robot_id": robot.id,
        "may_operate": may_operate,
        "template": _template(),
        "charts": charts,
        "poses": _pose_panel(session, robot.id, start_ms, end_ms, focus),
        "spectra": _spectra(session, robot.id, joints, start_ms, end_ms, motors),
        "run": focus_public,
        "planned": _planned_checks(focus) if focus else [],
        "alarms": jsonable_encoder([runs_service.alarm_public(a) for a in alarms]),
        "live": {"url": f"/robots/{robot.id}/live", "since": since_ms, "max_points": LIVE_MAX_POINTS,
                 "open": open_window, "recent_ms": RECENT_RAW_MS,
                 "keys": [k for chart in charts for k in chart["keys"]]},
    }
    return {
        "robot": robot,
        "owner": orgs.get(robot.owner_org_id),
        "connectivity": telemetry_service.connectivity(session, robot.id),
        "parts": _with_part_types(session, tree),
        "parts_count": _count(tree),
        "runs": runs,
        "run_count": run_count,
        "focus": focus,
        "templates": templates,
        "may_operate": may_operate,
        "window": {"start": _iso(start_ms), "end": _iso(end_ms - 1), "open": open_window,
                   "interval_s": interval_ms // 1000 if interval_ms else None},
        "page": page,
    }


def _count(nodes: Iterable[dict[str, Any]]) -> int:
    return sum(1 + _count(n["children"]) for n in nodes)


def _with_part_types(session: Session, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The installation tree with each node's part type (number and name) for the page."""
    out = []
    for node in nodes:
        part_type = parts_service.get_part_type(session, node["part_type_id"])
        out.append({**node, "part_number": part_type.part_number, "type_name": part_type.name,
                    "children": _with_part_types(session, node["children"])})
    return out


def _planned_checks(run: TestRun) -> list[dict[str, Any]]:
    """The checks of a run's template snapshot, for the list shown while the run is still going."""
    all_joints = [f"J{n}" for n in range(1, int(run.spec.get("joint_count", DEFAULT_JOINTS)) + 1)]
    robot_level = {c.value for c in ROBOT_CHECKS}
    return [{"type": c.get("type"), "limit": c.get("limit"),
             "joints": [] if c.get("type") in robot_level else (c.get("joints") or all_joints)}
            for c in run.spec.get("checks", [])]


def _charts(session: Session, robot_id: int, joints: Sequence[int], start_ms: int, end_ms: int,
            motors: dict[str, runs_service.PartAtJoint], *, open_window: bool
            ) -> tuple[list[dict[str, Any]], int | None]:
    """The live charts' first data: raw samples for a short window; for a long one SQL bucket averages
    (CHART_POINTS per trace) and, while the window is open, the last RECENT_RAW_MS raw, which the page follows."""
    keys = [fn(n) for _, _, _, fn in CHARTS for n in joints]
    span = end_ms - start_ms
    interval_ms = None
    if span <= CHART_POINTS * 1000:
        rows = telemetry_service.samples(session, robot_id, keys, start_ms, end_ms)
    else:
        split = end_ms - RECENT_RAW_MS if open_window else end_ms
        interval_ms = math.ceil((split - start_ms) / CHART_POINTS / 1000) * 1000
        rows = telemetry_service.samples(session, robot_id, keys, start_ms, split, interval_ms=interval_ms,
                                         agg="avg")
        if open_window:
            rows += telemetry_service.samples(session, robot_id, keys, split, end_ms)
    series: dict[str, tuple[list[int], list[float]]] = {k: ([], []) for k in keys}
    for row in rows:
        if row["value"] is not None:
            series[row["key"]][0].append(row["ts"])
            series[row["key"]][1].append(round(row["value"], 3))
    charts = []
    for name, title, unit, key_of in CHARTS:
        limits = {}
        if name == "temp":
            limit = min((float(m.limits["max_temp_c"]) for m in motors.values()
                         if isinstance(m.limits.get("max_temp_c"), int | float)),
                        default=runs_service.DEFAULT_MAX_TEMP_C)
            limits = {f"limit {limit:g} °C": limit}
        chart_keys = [key_of(n) for n in joints]
        fig = figures.time_series({f"J{n}": series[key_of(n)] for n in joints}, title=title, y_title=unit,
                                  limits=limits, epoch_ms=True)
        # the page titles each chart in HTML: the legend gets the top line to itself, also on a narrow tablet
        fig.update_layout(height=300, margin={"l": 50, "r": 15, "t": 30, "b": 30}, title=None, xaxis_title=None,
                          legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "xanchor": "left"})
        charts.append({"id": f"chart-{name}", "title": title, "unit": unit, "keys": chart_keys, "figure": _figure(fig),
                       "points": sum(len(series[k][0]) for k in chart_keys)})
    return charts, interval_ms


def _pose_limits(run: TestRun | None) -> tuple[float | None, float | None]:
    if run is None:
        return None, None
    limits = {c.get("type"): c.get("limit") for c in run.spec.get("checks", [])}
    return limits.get(CheckType.POSE_ACCURACY.value), limits.get(CheckType.POSE_REPEATABILITY.value)


def _pose_panel(session: Session, robot_id: int, start_ms: int, end_ms: int, run: TestRun | None
                ) -> dict[str, Any]:
    """ISO 9283: attained minus commanded per pose with AP and RP (analysis.pose_stats_by_pose) in the window."""
    rows = telemetry_service.poses(session, robot_id, start_ms, end_ms)
    if not rows:
        return {"figure": None, "table": [], "note": "No ISO 9283 pose measurements in this window."}
    deviations: dict[str, tuple[list[float], list[float]]] = {}
    for r in sorted(rows, key=lambda r: (r.pose, r.cycle, r.ts_ms)):
        dx, dy = deviations.setdefault(r.pose, ([], []))
        dx.append(r.attained_x_mm - r.commanded_x_mm)
        dy.append(r.attained_y_mm - r.commanded_y_mm)
    note, table, figures_mm = None, [], {}
    try:
        report = analysis.pose_stats_by_pose(
            [r.pose for r in rows], [(r.commanded_x_mm, r.commanded_y_mm, r.commanded_z_mm) for r in rows],
            [(r.attained_x_mm, r.attained_y_mm, r.attained_z_mm) for r in rows], commanded_tol_mm=0.01)
        figures_mm = {pose: (s.ap_mm, s.rp_mm) for pose, s in report.by_pose}
        table = [{"pose": pose, "n": s.n, "ap_mm": s.ap_mm, "rp_mm": s.rp_mm,
                  "worst_ap": pose == report.worst_ap_pose, "worst_rp": pose == report.worst_rp_pose}
                 for pose, s in sorted(report.by_pose)]
    except (ValueError, TypeError) as exc:
        note = f"AP and RP not computed: {exc}"
    ap_limit, rp_limit = _pose_limits(run)
    fig = figures.iso9283_pose_scatter(deviations, figures_mm=figures_mm, limits_mm=(ap_limit, rp_limit))
    return {"figure": _figure(fig), "table": table, "note": note, "ap_limit": ap_limit, "rp_limit": rp_limit,
            "measurements": len(rows)}


def _bearing(motor: runs_service.PartAtJoint | None) -> BearingGeometry | None:
    raw = motor.limits.get("bearing") if motor is not None else None
    if not isinstance(raw, dict):
        return None
    try:
        return BearingGeometry.model_validate(raw)
    except ValueError:
        return None


def _latest_capture(session: Session, robot_id: int, channel: str, start_ms: int, end_ms: int) -> Any:
    """The channel's last capture (contiguous blocks) in the window, without loading the other captures' data."""
    # runs_service._captures reads block ids and times only; a public telemetry_service.latest_capture would be the
    # better home for this (see the report).
    captures = runs_service._captures(session, robot_id, channel, start_ms, end_ms - 1)
    return captures[-1] if captures else None


def _shaft_hz(session: Session, robot_id: int, joint: int, t0_ms: int, t1_ms: float) -> float | None:
    """Median motor shaft speed within a minute of the capture (the capture is taken at a constant speed)."""
    key = speed_key(joint)
    ts, values = telemetry_service.scalar_series(session, robot_id, [key], t0_ms - SPEED_WINDOW_MS,
                                                 int(t1_ms) + SPEED_WINDOW_MS)[key]
    if not values.size:
        return None
    speed = float(np.median(values))
    return speed if speed > 0 else None


def _envelope_nperseg(n: int, rate_hz: float) -> int:
    """About 1 Hz lines (a power of two near the rate): BPFO's ±3 % window stays several lines wide."""
    return max(8, min(n, 1 << round(math.log2(rate_hz))))


def _spectra(session: Session, robot_id: int, joints: Sequence[int], start_ms: int, end_ms: int,
             motors: dict[str, runs_service.PartAtJoint]) -> list[dict[str, Any]]:
    """Per joint: spectra of the latest vibration capture with the motor bearing's defect frequencies marked."""
    out = []
    for n in joints:
        joint, channel = f"J{n}", vibration_channel(n)
        entry: dict[str, Any] = {"joint": joint, "channel": channel, "figure": None, "notes": [], "markers": {}}
        out.append(entry)
        capture = _latest_capture(session, robot_id, channel, start_ms, end_ms)
        if capture is None:
            entry["notes"].append(f"No {channel} capture in this window.")
            continue
        blocks = telemetry_service.waveform_blocks(session, robot_id, channel, capture.t0_ms,
                                                   int(capture.end_ms) + 1)
        values = np.concatenate([b.values.astype(np.float64) for b in blocks if b.rate_hz == capture.rate_hz])
        rate = float(capture.rate_hz)
        entry |= {"t0": _iso(capture.t0_ms), "duration_s": round(values.size / rate, 3), "rate_hz": rate}
        shaft = _shaft_hz(session, robot_id, n, capture.t0_ms, capture.end_ms)
        motor = motors.get(joint)
        geometry = _bearing(motor)
        markers: dict[str, float] = {}
        if shaft is None:
            entry["notes"].append(f"No {speed_key(n)} samples within a minute of the capture: no defect frequencies.")
        else:
            entry["shaft_hz"] = shaft
        if geometry is None:
            entry["notes"].append(f"No bearing geometry on the {joint} motor's part type (test_limits.bearing).")
        elif shaft is not None:
            f = analysis.bearing_frequencies(shaft * geometry.speed_ratio, geometry.n_elements, geometry.ball_d_mm,
                                             geometry.pitch_d_mm, geometry.contact_angle_deg)
            markers = {"FTF": f.ftf_hz, "BSF": f.bsf_hz, "BPFO": f.bpfo_hz, "BPFI": f.bpfi_hz}
            entry["markers"] = markers
            entry["bearing"] = geometry.model_dump() | {"part_type": motor.part_type.part_number if motor else None}
        try:
            psd = analysis.welch_spectrum(values, rate, nperseg=min(PSD_NPERSEG, values.size))
            band = (rate / 10, rate * 0.4)  # as the bearing check: above the shaft harmonics
            envelope = analysis.envelope_spectrum(values, rate, band_hz=band, nperseg=_envelope_nperseg(values.size,
                                                                                                         rate))
        except ValueError as exc:
            entry["notes"].append(f"Spectrum not computed: {exc}")
            continue
        top_hz = min(rate / 2, max(200.0, 3.5 * max(markers.values(), default=(shaft or 50.0) * 6)))
        keep = (envelope.freqs_hz > 0) & (envelope.freqs_hz <= top_hz)
        fig = figures.bearing_spectrum(_sig(psd.freqs_hz, 6), _sig(psd.psd),
                                       envelope=(_sig(envelope.freqs_hz[keep], 6), _sig(envelope.psd[keep])),
                                       markers=markers, harmonics_of=[m for m in ("BPFO", "BPFI") if m in markers],
                                       band_hz=band,
                                       title=f"{joint} vibration · capture of {_utc(capture.t0_ms)}",
                                       psd_unit=f"({_unit(blocks[0].unit)})²/Hz")
        entry["figure"] = _figure(fig)
        for defect in ("BPFO", "BPFI"):
            if defect in markers:
                try:
                    peak = analysis.detect_bearing_defect(values, rate, markers[defect], band_hz=band)
                except ValueError:
                    continue
                entry.setdefault("defects", {})[defect] = {
                    "fundamental_db": round(peak.ratio_db[0], 1) if math.isfinite(peak.ratio_db[0]) else None,
                    "detected": peak.detected, "threshold_db": peak.threshold_db}
        try:
            velocity = analysis.velocity_rms_mm_s(values, rate)
            machine_class = (motor.limits.get("vibration_class") if motor else None) or \
                runs_service.DEFAULT_MACHINE_CLASS.value
            entry |= {"velocity_mm_s": velocity, "zone": analysis.vibration_zone(velocity, machine_class).value,
                      "machine_class": machine_class}
        except ValueError as exc:
            entry["notes"].append(f"Velocity RMS not computed: {exc}")
    return out


# --- live telemetry over server-sent events ----------------------------------------------------------------------


def _live_keys(text: str) -> list[str]:
    keys = list(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    if not keys:
        keys = [fn(n) for _, _, _, fn in CHARTS for n in range(1, DEFAULT_JOINTS + 1)]
    if len(keys) > LIVE_MAX_KEYS:
        raise ValidationError(f"keys: at most {LIVE_MAX_KEYS} keys per stream")
    for key in keys:
        if not _KEY_RE.match(key):
            raise ValidationError(f"keys: {key[:70]!r} is not a telemetry key")
    return keys


def _resume(last_event_id: str | None, keys: Sequence[str], since_ms: int) -> dict[str, int]:
    """Cursors per key: from the Last-Event-ID the browser sends back on reconnect, else just before ``since``."""
    cursors = dict.fromkeys(keys, since_ms - 1)
    if last_event_id:
        try:
            sent = json.loads(last_event_id)
        except ValueError:
            sent = None
        if isinstance(sent, dict):
            for key, ts in sent.items():
                if key in cursors and isinstance(ts, int) and not isinstance(ts, bool):
                    cursors[key] = max(cursors[key], min(ts, FAR_FUTURE_MS))
    return cursors


def _live_viewer(engine: Engine, request: Request, robot_id: int) -> auth.User | None:
    """The page session's user, if it may see the robot (NotFoundError otherwise); None without a session."""
    with session_scope(engine) as session:
        user = optional_page_user(request, session)
        if user is not None:
            parts_service.get_robot(session, robot_id, viewer=user)
        return user


def poll_samples(session: Session, robot_id: int, cursors: dict[str, int], *, batch_rows: int = LIVE_BATCH_ROWS
                 ) -> tuple[dict[str, dict[str, list[Any]]], bool]:
    """Return the numeric samples newer than each key's cursor (at most ``batch_rows`` rows) and whether more wait.

    One query from the oldest cursor, in time order. The cursors advance past what was sent; when the batch was
    complete every key's cursor also moves to the newest time seen (nothing older is left unsent), and when it was
    cut at time t to just before t, so a key that stopped reporting never holds the others back.
    """
    rows = telemetry_service.samples(session, robot_id, list(cursors), min(cursors.values()) + 1, FAR_FUTURE_MS,
                                     limit=batch_rows)
    series: dict[str, dict[str, list[Any]]] = {}
    newest: dict[str, int] = {}
    for row in rows:
        key, ts = row["key"], row["ts"]
        if ts <= cursors[key]:
            continue
        newest[key] = max(newest.get(key, ts), ts)
        if row["value"] is not None:
            slot = series.setdefault(key, {"ts": [], "v": []})
            slot["ts"].append(ts)
            slot["v"].append(row["value"])
    more = len(rows) >= batch_rows
    floor = (rows[-1]["ts"] - 1 if more else rows[-1]["ts"]) if rows else None
    for key in cursors:
        cursors[key] = max(cursors[key], newest.get(key, cursors[key]), floor if floor is not None else cursors[key])
    return series, more


def _poll(engine: Engine, robot_id: int, cursors: dict[str, int]) -> tuple[dict[str, Any], bool]:
    with session_scope(engine) as session:
        return poll_samples(session, robot_id, cursors)


def _live_status(engine: Engine, robot_id: int, token: str) -> dict[str, Any]:
    """What the page refreshes every few seconds: robot status, connectivity, alarms and the latest runs.

    The page session is checked again each time: logging out (or a revoked token) ends the stream.
    """
    with session_scope(engine) as session:
        user = auth.user_for_token(session, token)
        if user is None:
            raise ForbiddenError("the session has ended: log in again for live telemetry")
        robot = parts_service.get_robot(session, robot_id, viewer=user)
        alarms, _ = runs_service.list_alarms(session, viewer=user, robot_id=robot_id, limit=ALARM_ROWS)
        runs, _ = runs_service.list_runs(session, viewer=user, robot_id=robot_id, limit=5)
        status: dict[str, Any] = jsonable_encoder({
            "robot_status": robot.status, "connectivity": telemetry_service.connectivity(session, robot_id),
            "alarms": [runs_service.alarm_public(a) for a in alarms],
            "runs": [{"id": r.id, "state": r.state, "checks_total": r.checks_total,
                      "checks_failed": r.checks_failed} for r in runs]})
        return status


def _event(data: Any, *, event: str | None = None, event_id: str | None = None) -> str:
    lines = [f"event: {event}"] if event else []
    if event_id:
        lines.append(f"id: {event_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), allow_nan=False))
    return "\n".join(lines) + "\n\n"


async def _live_events(request: Request, engine: Engine, robot_id: int, token: str,
                       cursors: dict[str, int]) -> AsyncIterator[str]:
    yield f"retry: 3000\n: live telemetry of robot {robot_id}\n\n"
    started = time.monotonic()
    next_status = started
    quiet_since = started
    failures = 0
    while time.monotonic() - started < LIVE_MAX_S:
        if await request.is_disconnected():
            return
        more = False
        try:
            series, more = await run_in_threadpool(_poll, engine, robot_id, cursors)
            if series:
                yield _event({"series": series}, event_id=json.dumps(cursors, separators=(",", ":")))
                quiet_since = time.monotonic()
            if time.monotonic() >= next_status:
                yield _event(await run_in_threadpool(_live_status, engine, robot_id, token), event="status")
                next_status = time.monotonic() + LIVE_STATUS_S
                quiet_since = time.monotonic()
            failures = 0
        except RefurbError as exc:  # the session ended, or the robot went away or is no longer visible
            yield _event({"detail": exc.message}, event="gone")
            return
        except Exception:  # a locked or restarting database: keep the stream, try again
            failures += 1
            log.warning("live stream of robot %s: poll failed (%d in a row)", robot_id, failures, exc_info=True)
            if failures >= LIVE_MAX_FAILURES:
                return
        if time.monotonic() - quiet_since >= LIVE_HEARTBEAT_S:
            yield ": heartbeat\n\n"
            quiet_since = time.monotonic()
        if not more:
            await anyio.sleep(LIVE_POLL_S)


@router.get("/robots/{robot_id}/live")
async def live(robot_id: int, request: Request, keys: str = "", since: int | None = None) -> Response:
    """Server-sent events: ``data:`` lines carry ``{"series": {key: {"ts": [...], "v": [...]}}}`` with the samples
    newer than each key's cursor; ``event: status`` carries robot status, connectivity, alarms and runs."""
    engine: Engine = request.app.state.engine
    user = await run_in_threadpool(_live_viewer, engine, request, robot_id)
    if user is None:
        return JSONResponse({"detail": "log in to follow live telemetry"}, status_code=401)
    key_list = _live_keys(keys)
    start = since if since is not None else _now_ms() - LIVE_OVERLAP_MS
    cursors = _resume(request.headers.get("last-event-id"), key_list, max(0, min(start, FAR_FUTURE_MS)))
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    return StreamingResponse(_live_events(request, engine, robot_id, token, cursors), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
