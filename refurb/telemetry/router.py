"""REST routes of telemetry: import, time series, waveforms with spectra, poses, gaps, connectivity, ingest stats
and quarantine. Parse, authorise, call one service function, shape the response."""

from __future__ import annotations

import base64
import re
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from refurb.auth import CurrentUser, ManagerUser, StaffUser, TechnicianUser
from refurb.db import SessionDep
from refurb.errors import ValidationError
from refurb.telemetry import service
from refurb.telemetry.parsing import parse_import_csv, parse_import_json

router = APIRouter(tags=["telemetry"])

DEFAULT_WINDOW_MS = 24 * 3600 * 1000
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _time_ms(value: str | None, name: str, default: int) -> int:
    """Read a time as integer epoch milliseconds or ISO 8601 with a zone (``2026-01-31T09:00:00Z``)."""
    if value is None or value == "":
        return default
    text = value.strip()
    if re.fullmatch(r"-?\d{1,19}", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValidationError(f"{name} must be epoch milliseconds or ISO 8601 with a zone, got {value!r}") from None
    if moment.tzinfo is None:
        raise ValidationError(f"{name} must carry a time zone, e.g. 2026-01-31T09:00:00Z")
    return int(moment.timestamp() * 1000)


def _window(start: str | None, end: str | None) -> tuple[int, int]:
    end_ms = _time_ms(end, "end", time.time_ns() // 1_000_000 + 1)
    return _time_ms(start, "start", end_ms - DEFAULT_WINDOW_MS), end_ms


def _interval_ms(value: str | None) -> int | None:
    """Read a bucket width: milliseconds (``60000``) or a duration (``500ms``, ``10s``, ``5m``, ``1h``, ``1d``)."""
    if value is None or value == "":
        return None
    match = _DURATION.fullmatch(value.strip())
    if not match:
        raise ValidationError(f"interval must be milliseconds or a duration like 10s, 5m, 1h; got {value!r}")
    ms = int(float(match.group(1)) * _UNIT_MS[match.group(2) or "ms"])
    if ms <= 0:
        raise ValidationError("interval must be > 0")
    return ms


def _keys(values: list[str]) -> list[str]:
    return [k.strip() for v in values for k in v.split(",") if k.strip()]


@router.post("/telemetry/import", openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
    "text/csv": {"schema": {"type": "string"}}}}})
async def import_telemetry(request: Request, session: SessionDep, _: TechnicianUser,
                           format: str | None = Query(None, pattern="^(json|csv)$",
                                                      description="default: from the Content-Type")
                           ) -> dict[str, Any]:
    """Import historical samples (JSON rows or CSV ``serial,key,ts,value[,seq]``) with insert-or-ignore."""
    body = await request.body()
    content_type = request.headers.get("content-type", "").lower()
    kind = format or ("csv" if "csv" in content_type or content_type.startswith("text/") else "json")
    now_ms = time.time_ns() // 1_000_000
    parse = parse_import_csv if kind == "csv" else parse_import_json
    return service.import_samples(session, parse(body, received_at_ms=now_ms))


@router.get("/robots/{robot_id}/telemetry")
def robot_telemetry(robot_id: int, session: SessionDep, user: CurrentUser,
                    keys: list[str] = Query(..., description="comma-separated or repeated"),
                    start: str | None = Query(None, description="epoch ms or ISO 8601; default end - 24 h"),
                    end: str | None = Query(None, description="epoch ms or ISO 8601 (exclusive); default now"),
                    interval: str | None = Query(None, description="bucket width: ms or 10s, 5m, 1h ..."),
                    agg: str | None = Query(None, description="min, max, avg (default with interval) or count"),
                    ) -> dict[str, Any]:
    """Samples of one robot in time order: raw, or bucketed and aggregated in the database."""
    start_ms, end_ms = _window(start, end)
    key_list = _keys(keys)
    rows = service.samples(session, robot_id, key_list, start_ms, end_ms, _interval_ms(interval), agg, viewer=user)
    if interval is None:
        rows = [{"key": r["key"], "ts": r["ts"], "value": r["value"], **({"text": r["text"]} if r["text"] else {})}
                for r in rows]
    return {"robot_id": robot_id, "keys": key_list, "start": start_ms, "end": end_ms,
            "interval": _interval_ms(interval), "agg": (agg or "avg") if interval else None,
            "count": len(rows), "truncated": len(rows) >= service.MAX_QUERY_ROWS, "data": rows}


@router.get("/robots/{robot_id}/waveforms")
def robot_waveforms(robot_id: int, session: SessionDep, user: CurrentUser,
                    channel: str = Query(..., min_length=1, max_length=64),
                    start: str | None = None, end: str | None = None,
                    spectrum: bool = Query(True, description="Welch power spectral density per block"),
                    values: bool = Query(False, description="include the samples"),
                    limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
    """Waveform blocks of one channel with RMS and their spectrum."""
    start_ms, end_ms = _window(start, end)
    return service.waveform_report(session, robot_id, channel, start_ms, end_ms, viewer=user, spectrum=spectrum,
                                   include_values=values, limit=limit)


@router.get("/robots/{robot_id}/poses")
def robot_poses(robot_id: int, session: SessionDep, user: CurrentUser, start: str | None = None,
                end: str | None = None) -> dict[str, Any]:
    """ISO 9283 pose measurements (positions in mm, orientation in degrees) in time order."""
    start_ms, end_ms = _window(start, end)
    rows = service.poses(session, robot_id, start_ms, end_ms, viewer=user)
    data = [{"ts": p.ts_ms, "pose": p.pose, "cycle": p.cycle,
             "commanded": {"x": p.commanded_x_mm, "y": p.commanded_y_mm, "z": p.commanded_z_mm},
             "attained": {"x": p.attained_x_mm, "y": p.attained_y_mm, "z": p.attained_z_mm},
             "orientation": p.orientation} for p in rows]
    return {"robot_id": robot_id, "start": start_ms, "end": end_ms, "count": len(data), "data": data}


@router.get("/robots/{robot_id}/gaps")
def robot_gaps(robot_id: int, session: SessionDep, user: CurrentUser,
               limit: int = Query(1000, ge=1, le=10_000)) -> dict[str, Any]:
    """Missing ``seq`` ranges of the robot's messages (loss upstream of refurb)."""
    return service.gaps(session, robot_id, viewer=user, limit=limit)


@router.get("/robots/{robot_id}/connectivity")
def robot_connectivity(robot_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Online/offline from the robot's status topic, and when refurb last heard from it."""
    return service.connectivity(session, robot_id, viewer=user)


@router.get("/ingest/stats")
def ingest_stats(session: SessionDep, _: StaffUser) -> dict[str, Any]:
    """Ingest counters over all workers: received, stored, duplicates, quarantined by reason, queue depth, lag."""
    return service.ingest_stats(session)


@router.get("/ingest/quarantine")
def ingest_quarantine(session: SessionDep, _: ManagerUser, reason: str | None = None, serial: str | None = None,
                      offset: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=500)) -> dict[str, Any]:
    """Refused messages with their reason and (truncated) payload, newest first."""
    rows, count = service.list_quarantine(session, reason=reason, serial=serial, offset=offset, limit=limit)
    data = [{"id": q.id, "received_at": q.received_at, "topic": q.topic, "serial": q.serial, "reason": q.reason,
             "detail": q.detail, "payload_size": q.payload_size,
             "payload_preview": q.payload[:500].decode("utf-8", "replace"),
             "payload_base64": base64.b64encode(q.payload).decode()} for q in rows]
    return {"data": data, "count": count}
