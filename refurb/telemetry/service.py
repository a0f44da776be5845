"""Telemetry storage and queries: bulk insert-or-ignore of parsed messages, quarantine, connectivity, counters,
time-series queries (raw or bucketed in SQL), waveform blocks with spectra, sequence gaps, retention, imports and
MQTT credentials.

Functions take ``session`` first and never commit: the ingest worker, the request session or the CLI commits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from sqlalchemy import Float, Integer, LargeBinary, String, Table, TypeDecorator, case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session
from sqlmodel.sql.sqltypes import AutoString

from refurb.auth import User
from refurb.db import utcnow
from refurb.errors import NotFoundError, ValidationError
from refurb.parts import service as parts_service
from refurb.parts.models import Robot
from refurb.telemetry import broker
from refurb.telemetry.models import (
    Connectivity,
    IngestCounter,
    PoseSample,
    QuarantinedMessage,
    RobotConnection,
    Sample,
    SampleAggregate,
    SeenSeq,
    WaveformBlock,
)
from refurb.telemetry.parsing import ConnectionState, ImportResult, ParseResult, QuarantineReason, ScalarSample

QUARANTINE_PAYLOAD_BYTES: Final = 4096
"""Raw payload bytes kept on a quarantine row (the full size is recorded)."""
STORAGE_ERROR: Final = "storage_error"
"""Quarantine reason for a message the database refused even alone (never retried forever)."""
NEGATIVE_CACHE_TTL_S: Final = 2.0
"""How long an unknown serial stays unknown before the database is asked again (new robots appear quickly)."""
MAX_QUERY_ROWS: Final = 200_000
"""Most rows one telemetry query returns."""
LIVE_WORKER_S: Final = 30.0
"""A worker that persisted its counters this recently counts as running (queue depth and lag are its)."""
AGGREGATES: Final = ("min", "max", "avg", "count")
SUM_COUNTERS: Final = ("received", "stored", "duplicates", "acked", "stored_samples", "stored_waveform_blocks",
                       "stored_waveform_samples", "stored_poses", "status_updates", "batches", "db_errors",
                       "reconnects", "redelivery_dropped", "stale_acks_skipped")
_CHUNK: Final = 5000
_SQLITE_MAX_VARIABLES: Final = 32_000  # SQLite >= 3.32 allows 32,766 parameters per statement


# --- inserting ---------------------------------------------------------------------------------------------------


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _insert(session: Session, table: Table) -> Any:
    name = _dialect(session)
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"telemetry storage supports SQLite and PostgreSQL, not {name}")


def _plain(table: Table) -> bool:
    """Whether every column takes Python values as they are (no JSON, no type decorators)."""
    return all(isinstance(c.type, Integer | Float | String | LargeBinary | AutoString)
               and (isinstance(c.type, AutoString) or not isinstance(c.type, TypeDecorator)) for c in table.columns)


Rows = Sequence[dict[str, Any]] | Sequence[tuple[Any, ...]]


def _sqlite_insert_ignore(session: Session, table: Table, rows: Rows, columns: Sequence[str],
                          returning: str | None = None) -> Any:
    """One multi-row ``INSERT ... ON CONFLICT DO NOTHING`` per chunk: a single step in SQLite for many rows.

    ``executemany`` steps once per row and releases the GIL each time; with the MQTT thread busy that turns into
    thousands of GIL hand-overs per batch. One statement per chunk keeps a commit of 2,000 rows to a few.
    """
    quote = session.get_bind().dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    per_chunk = max(1, min(_CHUNK, _SQLITE_MAX_VARIABLES // len(columns)))
    tail = " ON CONFLICT DO NOTHING" + (f" RETURNING {quote(returning)}" if returning else "")
    as_tuple = None if isinstance(rows[0], tuple) else itemgetter(*columns)
    conn = session.connection()
    inserted = 0
    returned: list[Any] = []
    for start in range(0, len(rows), per_chunk):
        chunk = rows[start:start + per_chunk]
        params = tuple(chain.from_iterable(chunk if as_tuple is None else map(as_tuple, chunk)))
        result = conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail, params)
        if returning:
            returned += [r[0] for r in result]
        else:
            inserted += result.rowcount
    return returned if returning else inserted


def insert_ignore(session: Session, model: Any, rows: Rows, *, columns: Sequence[str] | None = None) -> int:
    """Insert rows, skipping those whose identity exists; return how many were actually inserted.

    ``rows`` are dicts, or tuples in the order of ``columns``. SQLite reports the rows a statement changed;
    PostgreSQL answers ``RETURNING`` only for inserted rows.
    """
    if not rows:
        return 0
    table = _table(model)
    if columns is None:
        columns = list(rows[0])  # type: ignore[arg-type]
    if len(columns) < 2:
        raise ValueError("insert_ignore needs at least two columns")
    if _dialect(session) == "sqlite" and _plain(table):
        return int(_sqlite_insert_ignore(session, table, rows, columns))
    dicts = [dict(zip(columns, r, strict=True)) for r in rows] if isinstance(rows[0], tuple) else list(rows)
    stmt = _insert(session, table).on_conflict_do_nothing()
    conn = session.connection()
    inserted = 0
    for start in range(0, len(dicts), _CHUNK):
        chunk = dicts[start:start + _CHUNK]
        if _dialect(session) == "sqlite":
            inserted += conn.execute(stmt, chunk).rowcount
        else:
            first_pk = next(iter(table.primary_key.columns))
            inserted += len(conn.execute(stmt.returning(first_pk), chunk).all())
    return inserted


def _upsert(session: Session, model: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str],
            merge: Callable[[Any], dict[str, Any]] | None = None) -> None:
    """Insert rows or update the existing ones (``merge(stmt)`` returns column -> expression of ``excluded``)."""
    if not rows:
        return
    table = _table(model)
    stmt = _insert(session, table)
    if merge is None:
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    else:
        updates = merge(stmt)
    session.connection().execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates), list(rows))


# --- robots --------------------------------------------------------------------------------------------------------


def robot_ids_by_serial(session: Session, serials: Iterable[str]) -> dict[str, int]:
    """Return the ids of the robots with these serials (unknown serials are absent)."""
    return parts_service.robot_ids_by_serial(session, serials)


class RobotCache:
    """Serial -> robot id for the ingest worker: known robots forever, unknown ones for a short time."""

    MAX_UNKNOWN: Final = 10_000

    def __init__(self, negative_ttl_s: float = NEGATIVE_CACHE_TTL_S) -> None:
        self.negative_ttl_s = negative_ttl_s
        self._ids: dict[str, int] = {}
        self._unknown_until: dict[str, float] = {}

    def resolve(self, session: Session, serials: Iterable[str]) -> dict[str, int]:
        """Return serial -> id for the known robots among ``serials`` (asks the database on a miss)."""
        wanted = set(serials)
        found = {s: self._ids[s] for s in wanted if s in self._ids}
        now = time.monotonic()
        ask = [s for s in wanted if s not in found and self._unknown_until.get(s, 0.0) <= now]
        if ask:
            fresh = robot_ids_by_serial(session, ask)
            self._ids.update(fresh)
            found.update(fresh)
            if len(self._unknown_until) > self.MAX_UNKNOWN:
                self._unknown_until.clear()  # a flood of bogus serials must not grow memory
            for serial in ask:
                if serial not in fresh:
                    self._unknown_until[serial] = now + self.negative_ttl_s
        return found


class ServerClock:
    """Stamps samples of the plain form (no device time) with the receive time, unique per robot and key.

    Two plain messages for one key received in the same millisecond would otherwise share the identity
    (robot, key, ts) and the second would be ignored as a duplicate: the later one gets the next free millisecond.
    """

    MAX_KEYS: Final = 100_000

    def __init__(self) -> None:
        self._last: dict[tuple[int, str], int] = {}

    def stamp(self, robot_id: int, key: str, received_ms: int) -> int:
        """Return a timestamp >= ``received_ms`` not handed out before for this robot and key."""
        if len(self._last) > self.MAX_KEYS:
            self._last.clear()
        slot = (robot_id, key)
        ts = max(received_ms, self._last.get(slot, received_ms - 1) + 1)
        self._last[slot] = ts
        return ts


def _server_time(sample: Any, received_ms: int) -> bool:
    """Whether a sample was stamped with the receive time (the parser's flag if it has one)."""
    return bool(sample.server_time) if _PARSER_FLAGS_SERVER_TIME else bool(sample.ts_ms == received_ms)


# A parser that marks samples without device time lets the receive-time test go; until then, equal times tell.
_PARSER_FLAGS_SERVER_TIME: Final = "server_time" in {f.name for f in dataclasses.fields(ScalarSample)}
_SAMPLE_COLUMNS: Final = ("robot_id", "key", "ts_ms", "value", "text", "seq", "received_at_ms")
_SEQ_COLUMNS: Final = ("robot_id", "seq", "received_at_ms")


def _robot_for_viewer(session: Session, robot_id: int, viewer: User | None) -> None:
    if viewer is not None:
        parts_service.get_robot(session, robot_id, viewer=viewer)


# --- storing messages -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Message:
    """One received MQTT message and its parse result: what the ingest worker stores, then acknowledges."""

    topic: str
    payload: bytes
    result: ParseResult


@dataclass
class StoreOutcome:
    """What a batch did: records inserted, duplicates ignored, messages quarantined per reason."""

    stored_samples: int = 0
    stored_waveform_blocks: int = 0
    stored_waveform_samples: int = 0
    stored_poses: int = 0
    status_updates: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def stored(self) -> int:
        """Return the records inserted (samples, waveform blocks and poses)."""
        return self.stored_samples + self.stored_waveform_blocks + self.stored_poses

    def add_to(self, counters: dict[str, Any]) -> None:
        """Add this outcome to a counters dict as the worker persists it."""
        for name in ("stored_samples", "stored_waveform_blocks", "stored_waveform_samples", "stored_poses",
                     "status_updates", "duplicates"):
            counters[name] = counters.get(name, 0) + getattr(self, name)
        counters["stored"] = counters.get("stored", 0) + self.stored
        quarantined = counters.setdefault("quarantined", {})
        for reason, n in self.quarantined.items():
            quarantined[reason] = quarantined.get(reason, 0) + n


@dataclass(slots=True)
class _Connection:
    last_seen_ms: int = 0
    state: ConnectionState | None = None
    state_ts_ms: int = 0


def _ms_to_dt(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _dt_to_ms(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(milliseconds=1))


def _quarantine_row(message: Message, reason: str, detail: str) -> dict[str, Any]:
    topic = message.topic if isinstance(message.topic, str) else ""
    payload = bytes(message.payload)
    digest = hashlib.sha256(topic.encode("utf-8", "replace") + b"\0" + payload).hexdigest()
    serial = message.result.serials[0] if message.result.serials else None
    return {"digest": digest, "received_at": _ms_to_dt(message.result.received_at_ms), "topic": topic[:300],
            "serial": serial[:64] if serial else None, "reason": reason[:40], "detail": detail[:500],
            "payload": payload[:QUARANTINE_PAYLOAD_BYTES], "payload_size": len(payload)}


def quarantine(session: Session, items: Sequence[tuple[Message, str, str]]) -> tuple[Counter[str], int]:
    """Write quarantine rows once per (topic, payload); return (new rows per reason, repeats ignored)."""
    if not items:
        return Counter(), 0
    rows = [_quarantine_row(message, reason, detail) for message, reason, detail in items]
    reason_of = {row["digest"]: row["reason"] for row in rows}
    table = _table(QuarantinedMessage)
    stmt = _insert(session, table).on_conflict_do_nothing().returning(table.c.digest)
    new: list[str] = []
    for row in rows:  # one by one: RETURNING after an executemany is not portable, and quarantine is rare
        new.extend(d for (d,) in session.connection().execute(stmt, row))
    counts = Counter(reason_of[d] for d in new)
    return counts, len(rows) - len(new)


def store_messages(session: Session, messages: Sequence[Message], *, cache: RobotCache | None = None,
                   clock: ServerClock | None = None) -> StoreOutcome:
    """Store a batch of parsed messages with insert-or-ignore; quarantine the invalid and unknown ones.

    Identities: samples (robot, key, ts), waveform blocks (robot, channel, t0), poses (robot, pose, cycle, ts). A
    message in the plain form has no device time: its samples get the receive time (unique per robot and key, see
    :class:`ServerClock`), and when it has a ``seq`` the pair (robot, seq) is its identity, so a redelivery is not
    stored twice. Without a ``seq`` a redelivered plain message is stored again (at-least-once).
    """
    out = StoreOutcome()
    cache = cache or RobotCache()
    clock = clock or ServerClock()
    ok = [m for m in messages if m.result.rejection is None]
    ids = cache.resolve(session, {s for m in ok for s in m.result.serials})
    server_seqs = {(ids[s.serial], s.seq) for m in ok for s in m.result.scalars
                   if s.seq is not None and s.serial in ids and _server_time(s, m.result.received_at_ms)}
    seen_before = _existing_seqs(session, server_seqs)
    claimed: dict[tuple[int, int], int] = {}
    samples: list[tuple[Any, ...]] = []
    waveforms: list[dict[str, Any]] = []
    poses: list[dict[str, Any]] = []
    seqs: dict[tuple[int, int], int] = {}
    bad: list[tuple[Message, str, str]] = []
    connections: dict[int, _Connection] = {}
    for index, message in enumerate(messages):
        result = message.result
        if result.rejection is not None:
            bad.append((message, result.rejection.reason.value, result.rejection.detail))
            continue
        unknown = [s for s in result.serials if s not in ids]
        if unknown:
            bad.append((message, QuarantineReason.UNKNOWN_ROBOT.value, f"no robot with serial {', '.join(unknown)}"))
            continue
        received = result.received_at_ms
        for s in result.scalars:
            rid = ids[s.serial]
            ts = s.ts_ms
            server_time = _server_time(s, received)
            if s.seq is not None:
                identity = (rid, s.seq)
                if server_time and (identity in seen_before or claimed.setdefault(identity, index) != index):
                    out.duplicates += 1
                    continue
                seqs.setdefault(identity, received)
            if server_time:
                ts = clock.stamp(rid, s.key, ts)
            samples.append((rid, s.key, ts, s.value, s.text, s.seq, received))
        for w in result.waveforms:
            values = np.ascontiguousarray(w.values, dtype="<f4")
            waveforms.append({"robot_id": ids[w.serial], "channel": w.channel, "t0_ms": w.t0_ms,
                              "rate_hz": w.rate_hz, "unit": w.unit, "n_samples": int(values.size),
                              "data": values.tobytes(), "received_at_ms": received})
        for p in result.poses:
            orientation = None
            if p.commanded_abc_deg is not None or p.attained_abc_deg is not None:
                orientation = {"commanded": _abc(p.commanded_abc_deg), "attained": _abc(p.attained_abc_deg)}
            poses.append({"robot_id": ids[p.serial], "ts_ms": p.ts_ms, "pose": p.pose, "cycle": p.cycle,
                          "commanded_x_mm": p.commanded_xyz_mm[0], "commanded_y_mm": p.commanded_xyz_mm[1],
                          "commanded_z_mm": p.commanded_xyz_mm[2], "attained_x_mm": p.attained_xyz_mm[0],
                          "attained_y_mm": p.attained_xyz_mm[1], "attained_z_mm": p.attained_xyz_mm[2],
                          "orientation": orientation, "received_at_ms": received})
        for serial in result.serials:
            conn = connections.setdefault(ids[serial], _Connection())
            conn.last_seen_ms = max(conn.last_seen_ms, received)
        for st in result.statuses:
            conn = connections.setdefault(ids[st.serial], _Connection())
            if conn.state is None or st.ts_ms >= conn.state_ts_ms:
                conn.state, conn.state_ts_ms = st.state, st.ts_ms
            out.status_updates += 1

    out.stored_samples = insert_ignore(session, Sample, samples, columns=_SAMPLE_COLUMNS)
    out.duplicates += len(samples) - out.stored_samples
    if waveforms:
        inserted_blocks = _insert_waveforms(session, waveforms)
        out.stored_waveform_blocks = len(inserted_blocks)
        out.stored_waveform_samples = sum(inserted_blocks)
        out.duplicates += len(waveforms) - len(inserted_blocks)
    out.stored_poses = insert_ignore(session, PoseSample, poses)
    out.duplicates += len(poses) - out.stored_poses
    insert_ignore(session, SeenSeq, [(r, q, t) for (r, q), t in seqs.items()], columns=_SEQ_COLUMNS)
    _update_connections(session, connections)
    counts, repeats = quarantine(session, bad)
    out.quarantined.update(counts)
    out.duplicates += repeats
    return out


def _abc(abc: tuple[float, float, float] | None) -> dict[str, float] | None:
    return None if abc is None else {"a": abc[0], "b": abc[1], "c": abc[2]}


def _insert_waveforms(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert waveform blocks, returning the sample count of each block actually inserted."""
    table = _table(WaveformBlock)
    if _dialect(session) == "sqlite":
        return [int(n) for n in _sqlite_insert_ignore(session, table, rows, list(rows[0]), returning="n_samples")]
    stmt = _insert(session, table).on_conflict_do_nothing().returning(table.c.n_samples)
    return [int(n) for (n,) in session.connection().execute(stmt, rows).all()]


def _existing_seqs(session: Session, identities: set[tuple[int, int]]) -> set[tuple[int, int]]:
    if not identities:
        return set()
    by_robot: dict[int, list[int]] = {}
    for rid, seq in identities:
        by_robot.setdefault(rid, []).append(seq)
    found: set[tuple[int, int]] = set()
    for rid, seq_list in by_robot.items():
        for start in range(0, len(seq_list), 500):
            rows = session.execute(select(SeenSeq.seq).where(SeenSeq.robot_id == rid,
                                                             SeenSeq.seq.in_(seq_list[start:start + 500])))
            found.update((rid, int(seq)) for (seq,) in rows)
    return found


def _update_connections(session: Session, updates: dict[int, _Connection]) -> None:
    if not updates:
        return
    RC = RobotConnection
    existing = {rid: (state, changed, seen) for rid, state, changed, seen in session.execute(
        select(RC.robot_id, RC.state, RC.state_changed_at, RC.last_seen_at).where(RC.robot_id.in_(list(updates))))}
    rows = []
    for rid, update in updates.items():
        state, changed, seen = existing.get(rid, (Connectivity.OFFLINE, None, None))
        if update.state is not None and (changed is None or update.state_ts_ms >= _dt_to_ms(changed)):
            state, changed = Connectivity(update.state.value), _ms_to_dt(update.state_ts_ms)
        if update.last_seen_ms and (seen is None or update.last_seen_ms > _dt_to_ms(seen)):
            seen = _ms_to_dt(update.last_seen_ms)
        rows.append({"robot_id": rid, "state": state, "state_changed_at": changed, "last_seen_at": seen})
    _upsert(session, RobotConnection, rows, ["robot_id"])


# --- counters --------------------------------------------------------------------------------------------------


def save_counters(session: Session, *, worker_id: str, counters: dict[str, Any], started_at: datetime) -> None:
    """Persist one worker's counters (the worker calls this in the transaction of each batch)."""
    _upsert(session, IngestCounter, [{"worker_id": worker_id, "counters": counters, "started_at": started_at,
                                      "updated_at": utcnow()}], ["worker_id"])


def ingest_stats(session: Session, *, live_window_s: float = LIVE_WORKER_S) -> dict[str, Any]:
    """Return the ingest counters summed over every worker, with queue depth and lag of the running ones."""
    rows = list(session.execute(select(IngestCounter).order_by(IngestCounter.started_at,
                                                                IngestCounter.worker_id)).scalars())
    totals: dict[str, Any] = dict.fromkeys(SUM_COUNTERS, 0)
    quarantined: Counter[str] = Counter()
    queue_depth, lag_s = 0, 0.0
    workers = []
    live_after = utcnow() - timedelta(seconds=live_window_s)
    for row in rows:
        counters = row.counters or {}
        for name in SUM_COUNTERS:
            totals[name] += int(counters.get(name, 0))
        quarantined.update({str(k): int(v) for k, v in (counters.get("quarantined") or {}).items()})
        live = row.updated_at >= live_after and not counters.get("stopped", False)
        if live:
            queue_depth += int(counters.get("queue_depth", 0))
            lag_s = max(lag_s, float(counters.get("lag_s", 0.0)))
        workers.append({"worker_id": row.worker_id, "live": live, "connected": bool(counters.get("connected")),
                        "started_at": row.started_at, "updated_at": row.updated_at,
                        "received": int(counters.get("received", 0)), "stored": int(counters.get("stored", 0)),
                        "queue_depth": int(counters.get("queue_depth", 0)),
                        "lag_s": float(counters.get("lag_s", 0.0))})
    return {**totals, "quarantined": dict(sorted(quarantined.items())),
            "quarantined_total": sum(quarantined.values()), "queue_depth": queue_depth, "lag_s": round(lag_s, 3),
            "workers": workers}


def list_quarantine(session: Session, *, reason: str | None = None, serial: str | None = None, offset: int = 0,
                    limit: int = 100) -> tuple[list[QuarantinedMessage], int]:
    """Return a page of quarantined messages, newest first, and the total."""
    query = select(QuarantinedMessage)
    if reason:
        query = query.where(QuarantinedMessage.reason == reason)
    if serial:
        query = query.where(QuarantinedMessage.serial == serial)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(QuarantinedMessage.received_at.desc(), QuarantinedMessage.id.desc())
                           .offset(offset).limit(limit)).scalars()
    return list(rows), int(total)


# --- queries ---------------------------------------------------------------------------------------------------


def _check_range(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise ValidationError(f"end ({end_ms}) must be after start ({start_ms})")


def _check_keys(keys: Sequence[str]) -> list[str]:
    clean = sorted({k for k in keys if k})
    if not clean:
        raise ValidationError("keys: name at least one telemetry key")
    if len(clean) > 100:
        raise ValidationError("keys: at most 100 keys per query")
    return clean


def samples(session: Session, robot_id: int, keys: Sequence[str], start_ms: int, end_ms: int,
            interval_ms: int | None = None, agg: str | None = None, *, viewer: User | None = None,
            limit: int = MAX_QUERY_ROWS) -> list[dict[str, Any]]:
    """Return samples of ``keys`` in ``[start_ms, end_ms)`` in time order, raw or bucketed.

    Raw rows are ``{"key", "ts", "value", "text"}``. With ``interval_ms`` the numeric samples are aggregated in SQL
    per key into buckets starting at ``start_ms + k * interval_ms`` with ``agg`` (min, max, avg — the default — or
    count); rows are ``{"key", "ts" (bucket start), "value", "count"}`` and include the aggregates retention kept.
    """
    _robot_for_viewer(session, robot_id, viewer)
    keys = _check_keys(keys)
    _check_range(start_ms, end_ms)
    if agg is not None and agg not in AGGREGATES:
        raise ValidationError(f"agg must be one of {', '.join(AGGREGATES)}, got {agg!r}")
    if interval_ms is None:
        if agg is not None:
            raise ValidationError("agg needs an interval")
        query = (select(Sample.key, Sample.ts_ms, Sample.value, Sample.text)
                 .where(Sample.robot_id == robot_id, Sample.key.in_(keys), Sample.ts_ms >= start_ms,
                        Sample.ts_ms < end_ms)
                 .order_by(Sample.ts_ms, Sample.key).limit(limit))
        return [{"key": k, "ts": int(ts), "value": v, "text": t} for k, ts, v, t in session.execute(query)]
    if interval_ms <= 0:
        raise ValidationError("interval must be > 0")
    if (end_ms - start_ms) / interval_ms > limit:
        raise ValidationError(f"interval too small: more than {limit} buckets")
    return _buckets(session, robot_id, keys, start_ms, end_ms, interval_ms, agg or "avg")


def _buckets(session: Session, robot_id: int, keys: list[str], start_ms: int, end_ms: int, interval_ms: int,
             agg: str) -> list[dict[str, Any]]:
    raw_bucket = start_ms + ((Sample.ts_ms - start_ms) // interval_ms) * interval_ms
    raw = (select(Sample.key, raw_bucket.label("bucket"), func.count(Sample.value), func.min(Sample.value),
                  func.max(Sample.value), func.sum(Sample.value))
           .where(Sample.robot_id == robot_id, Sample.key.in_(keys), Sample.ts_ms >= start_ms, Sample.ts_ms < end_ms,
                  Sample.value.is_not(None))
           .group_by(Sample.key, "bucket"))
    A = SampleAggregate
    agg_bucket = start_ms + ((A.bucket_ms - start_ms) // interval_ms) * interval_ms
    kept = (select(A.key, agg_bucket.label("bucket"), func.sum(A.count), func.min(A.min), func.max(A.max),
                   func.sum(A.sum))
            .where(A.robot_id == robot_id, A.key.in_(keys), A.bucket_ms >= start_ms, A.bucket_ms < end_ms,
                   (interval_ms % A.interval_ms) == 0)
            .group_by(A.key, "bucket"))
    merged: dict[tuple[int, str], list[float]] = {}
    for query in (raw, kept):
        for key, bucket, count, lo, hi, total in session.execute(query):
            slot = merged.get((int(bucket), key))
            if slot is None:
                merged[(int(bucket), key)] = [int(count), float(lo), float(hi), float(total)]
            else:
                slot[0] += int(count)
                slot[1], slot[2], slot[3] = min(slot[1], lo), max(slot[2], hi), slot[3] + total
    rows = []
    for (bucket, key), (count, lo, hi, total) in sorted(merged.items()):
        value = {"min": lo, "max": hi, "avg": total / count if count else None, "count": count}[agg]
        rows.append({"key": key, "ts": bucket, "value": value, "count": int(count)})
    return rows


def scalar_series(session: Session, robot_id: int, keys: Sequence[str], start_ms: int, end_ms: int
                  ) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
    """Return each key's numeric samples in ``[start_ms, end_ms)`` as (ts_ms, values) arrays in time order."""
    keys = _check_keys(keys)
    out: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]] = {}
    for key in keys:
        rows = session.execute(select(Sample.ts_ms, Sample.value)
                               .where(Sample.robot_id == robot_id, Sample.key == key, Sample.ts_ms >= start_ms,
                                      Sample.ts_ms < end_ms, Sample.value.is_not(None))
                               .order_by(Sample.ts_ms)).all()
        ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        values = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
        out[key] = (ts, values)
    return out


@dataclass(frozen=True, slots=True, eq=False)
class Waveform:
    """A stored waveform block: ``values`` (float32) sampled at ``rate_hz`` from ``t0_ms``."""

    channel: str
    t0_ms: int
    rate_hz: float
    unit: str
    values: npt.NDArray[np.float32]


def waveform_blocks(session: Session, robot_id: int, channel: str, start_ms: int, end_ms: int, *,
                    limit: int | None = None) -> list[Waveform]:
    """Return the blocks of one channel starting in ``[start_ms, end_ms)`` in time order."""
    query = (select(WaveformBlock.channel, WaveformBlock.t0_ms, WaveformBlock.rate_hz, WaveformBlock.unit,
                    WaveformBlock.data)
             .where(WaveformBlock.robot_id == robot_id, WaveformBlock.channel == channel,
                    WaveformBlock.t0_ms >= start_ms, WaveformBlock.t0_ms < end_ms)
             .order_by(WaveformBlock.t0_ms))
    if limit is not None:
        query = query.limit(limit)
    return [Waveform(channel=c, t0_ms=int(t0), rate_hz=float(rate), unit=unit,
                     values=np.frombuffer(data, dtype="<f4"))
            for c, t0, rate, unit, data in session.execute(query)]


def waveform_report(session: Session, robot_id: int, channel: str, start_ms: int, end_ms: int, *,
                    viewer: User | None = None, spectrum: bool = True, include_values: bool = False,
                    limit: int = 20) -> dict[str, Any]:
    """Return a channel's blocks with RMS and, per block, the Welch power spectral density."""
    _robot_for_viewer(session, robot_id, viewer)
    _check_range(start_ms, end_ms)
    from refurb.telemetry import analysis

    blocks = []
    for block in waveform_blocks(session, robot_id, channel, start_ms, end_ms, limit=limit):
        values = block.values.astype(np.float64)
        item: dict[str, Any] = {"t0": block.t0_ms, "rate_hz": block.rate_hz, "unit": block.unit,
                                "n_samples": int(values.size), "duration_s": values.size / block.rate_hz,
                                "rms": float(np.sqrt(np.mean(values**2))) if values.size else None}
        if include_values:
            item["values"] = values.tolist()
        if spectrum and values.size >= 8:
            psd = analysis.welch_spectrum(values, block.rate_hz)
            item["spectrum"] = {"freqs_hz": psd.freqs_hz.tolist(), "psd": psd.psd.tolist(),
                                "unit": f"({block.unit})^2/Hz", "resolution_hz": psd.resolution_hz}
        blocks.append(item)
    return {"robot_id": robot_id, "channel": channel, "start": start_ms, "end": end_ms, "blocks": blocks}


def poses(session: Session, robot_id: int, start_ms: int, end_ms: int, *, viewer: User | None = None,
          limit: int = MAX_QUERY_ROWS) -> list[PoseSample]:
    """Return pose measurements in ``[start_ms, end_ms)`` ordered by time, pose and cycle."""
    _robot_for_viewer(session, robot_id, viewer)
    _check_range(start_ms, end_ms)
    query = (select(PoseSample).where(PoseSample.robot_id == robot_id, PoseSample.ts_ms >= start_ms,
                                      PoseSample.ts_ms < end_ms)
             .order_by(PoseSample.ts_ms, PoseSample.pose, PoseSample.cycle).limit(limit))
    return list(session.execute(query).scalars())


def gaps(session: Session, robot_id: int, *, viewer: User | None = None, limit: int = 1000) -> dict[str, Any]:
    """Return the missing ``seq`` ranges of a robot (window function ``lag()`` over the seen sequence numbers)."""
    _robot_for_viewer(session, robot_id, viewer)
    previous = func.lag(SeenSeq.seq).over(order_by=SeenSeq.seq)
    seen = select(SeenSeq.seq.label("seq"), previous.label("prev")).where(SeenSeq.robot_id == robot_id).subquery()
    missing = seen.c.seq - seen.c.prev - 1
    query = (select((seen.c.prev + 1).label("first"), (seen.c.seq - 1).label("last"), missing.label("missing"))
             .where(seen.c.seq - seen.c.prev > 1).order_by(seen.c.seq))
    ranges = [{"from": int(a), "to": int(b), "missing": int(n)} for a, b, n in session.execute(query.limit(limit))]
    total_missing = session.execute(select(func.coalesce(func.sum(missing), 0))
                                    .where(seen.c.seq - seen.c.prev > 1)).scalar_one()
    first, last, count = session.execute(select(func.min(SeenSeq.seq), func.max(SeenSeq.seq), func.count())
                                         .where(SeenSeq.robot_id == robot_id)).one()
    return {"robot_id": robot_id, "first_seq": first, "last_seq": last, "seen": int(count),
            "missing": int(total_missing), "gap_count": len(ranges), "gaps": ranges}


def connectivity(session: Session, robot_id: int, *, viewer: User | None = None) -> dict[str, Any]:
    """Return a robot's connectivity (from its status topic) and when refurb last heard from it."""
    _robot_for_viewer(session, robot_id, viewer)
    row = session.get(RobotConnection, robot_id)
    if row is None:
        return {"robot_id": robot_id, "state": "unknown", "state_changed_at": None, "last_seen_at": None}
    return {"robot_id": robot_id, "state": row.state.value, "state_changed_at": row.state_changed_at,
            "last_seen_at": row.last_seen_at}


# --- import ------------------------------------------------------------------------------------------------------


def import_samples(session: Session, result: ImportResult, *, max_rejections: int = 1000) -> dict[str, Any]:
    """Store the samples of a parsed import file (insert-or-ignore) and report counts and rejections."""
    if result.rejection is not None:
        raise ValidationError(f"{result.rejection.reason.value}: {result.rejection.detail}",
                              extra={"reason": result.rejection.reason.value})
    ids = robot_ids_by_serial(session, result.serials)
    unknown: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    seqs: dict[tuple[int, int], int] = {}
    now_ms = _dt_to_ms(utcnow())
    for s in result.samples:
        rid = ids.get(s.serial)
        if rid is None:
            unknown[s.serial] += 1
            continue
        rows.append({"robot_id": rid, "key": s.key, "ts_ms": s.ts_ms, "value": s.value, "text": s.text,
                     "seq": s.seq, "received_at_ms": now_ms})
        if s.seq is not None:
            seqs.setdefault((rid, s.seq), now_ms)
    stored = insert_ignore(session, Sample, rows)
    insert_ignore(session, SeenSeq, [{"robot_id": r, "seq": q, "received_at_ms": t} for (r, q), t in seqs.items()])
    rejections = [{"row": r.row_number, "reason": r.reason.value, "detail": r.detail}
                  for r in result.rejected_rows[:max_rejections]]
    return {"rows": len(result.samples) + len(result.rejected_rows), "stored": stored,
            "duplicates": len(rows) - stored, "rejected": len(result.rejected_rows) + sum(unknown.values()),
            "rejections": rejections, "unknown_robots": dict(sorted(unknown.items()))}


# --- retention -----------------------------------------------------------------------------------------------------


def _merge_aggregates(stmt: Any) -> dict[str, Any]:
    t = _table(SampleAggregate)
    ex = stmt.excluded
    return {"count": t.c.count + ex["count"], "sum": t.c.sum + ex["sum"],
            "min": case((ex["min"] < t.c.min, ex["min"]), else_=t.c.min),
            "max": case((ex["max"] > t.c.max, ex["max"]), else_=t.c.max)}


def _iter_waveform_rms(session: Session, cutoff_ms: int) -> Iterator[tuple[int, str, int, float]]:
    query = (select(WaveformBlock.robot_id, WaveformBlock.channel, WaveformBlock.t0_ms, WaveformBlock.data)
             .where(WaveformBlock.t0_ms < cutoff_ms))
    for rid, channel, t0, data in session.execute(query.execution_options(yield_per=500)):
        values = np.frombuffer(data, dtype="<f4").astype(np.float64)
        if values.size:
            yield int(rid), f"waveform:{channel}:rms", int(t0), float(np.sqrt(np.mean(values**2)))


def apply_retention(session: Session, *, older_than_days: float, interval_s: int, now: datetime | None = None
                    ) -> dict[str, Any]:
    """Downsample and drop telemetry older than ``older_than_days``.

    Numeric samples become per-``interval_s`` aggregates (count, min, max, sum; merged into any kept before),
    waveform blocks become one RMS value per block aggregated the same way, then raw samples, waveform blocks,
    seen sequence numbers and quarantine rows older than the cutoff are deleted. Poses are kept (they are few and
    ISO 9283 needs every cycle).
    """
    if older_than_days <= 0 or not math.isfinite(older_than_days):
        raise ValidationError("older_than_days must be > 0")
    if interval_s <= 0:
        raise ValidationError("interval_s must be > 0")
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    cutoff_ms = _dt_to_ms(cutoff)
    interval_ms = int(interval_s) * 1000
    bucket = (Sample.ts_ms // interval_ms) * interval_ms
    grouped = session.execute(
        select(Sample.robot_id, Sample.key, bucket.label("bucket"), func.count(Sample.value), func.min(Sample.value),
               func.max(Sample.value), func.sum(Sample.value))
        .where(Sample.ts_ms < cutoff_ms, Sample.value.is_not(None))
        .group_by(Sample.robot_id, Sample.key, "bucket")).all()
    aggregates = [{"robot_id": r, "key": k, "interval_ms": interval_ms, "bucket_ms": int(b), "count": int(n),
                   "min": float(lo), "max": float(hi), "sum": float(total)} for r, k, b, n, lo, hi, total in grouped]
    wave: dict[tuple[int, str, int], list[float]] = {}
    for rid, key, t0, rms in _iter_waveform_rms(session, cutoff_ms):
        slot = wave.setdefault((rid, key, t0 // interval_ms * interval_ms), [0, math.inf, -math.inf, 0.0])
        slot[0] += 1
        slot[1], slot[2], slot[3] = min(slot[1], rms), max(slot[2], rms), slot[3] + rms
    aggregates += [{"robot_id": r, "key": k, "interval_ms": interval_ms, "bucket_ms": b, "count": int(n),
                    "min": lo, "max": hi, "sum": total} for (r, k, b), (n, lo, hi, total) in wave.items()]
    for start in range(0, len(aggregates), _CHUNK):
        _upsert(session, SampleAggregate, aggregates[start:start + _CHUNK],
                ["robot_id", "key", "interval_ms", "bucket_ms"], merge=_merge_aggregates)
    conn = session.connection()
    deleted = {
        "samples": conn.execute(_table(Sample).delete().where(_table(Sample).c.ts_ms < cutoff_ms)).rowcount,
        "waveform_blocks": conn.execute(_table(WaveformBlock).delete()
                                        .where(_table(WaveformBlock).c.t0_ms < cutoff_ms)).rowcount,
        "seqs": conn.execute(_table(SeenSeq).delete().where(_table(SeenSeq).c.received_at_ms < cutoff_ms)).rowcount,
        "quarantine": conn.execute(_table(QuarantinedMessage).delete()
                                   .where(_table(QuarantinedMessage).c.received_at < cutoff)).rowcount,
    }
    return {"cutoff": cutoff, "interval_s": interval_s, "aggregates_written": len(aggregates), "deleted": deleted}


# --- MQTT credentials -------------------------------------------------------------------------------------------


def _robot_by_ref(session: Session, ref: str) -> Robot:
    robot = parts_service.find_robot(session, ref)
    if robot is None:
        raise NotFoundError(f"robot {ref!r} not found (give its serial or id)")
    return robot


def issue_robot_credentials(session: Session, robot_ref: str) -> tuple[Robot, str]:
    """Give a robot a new MQTT password; return the robot and the password (the only time it is visible).

    The username is the robot's serial. Only the Mosquitto PBKDF2-SHA512 hash is stored, which is exactly what the
    password file written by :func:`mqtt_password_entries` needs.
    """
    robot = _robot_by_ref(session, robot_ref)
    password = secrets.token_urlsafe(24)
    parts_service.set_robot_mqtt_password_hash(session, robot, broker.mosquitto_password_hash(password))
    return robot, password


def mqtt_password_entries(session: Session) -> list[tuple[str, str]]:
    """Return (serial, Mosquitto password hash) of every robot that has MQTT credentials, by serial."""
    return parts_service.robot_mqtt_password_hashes(session)
