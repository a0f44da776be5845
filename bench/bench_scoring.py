"""Scoring and center metrics over a generated center: full reuse-score recompute and the KPI query.

A center of N parts with 10 events each (100,000 parts and 1,000,000 events at full size) is written with bulk
inserts straight into a fresh SQLite file (and into PostgreSQL when ``--pg URL`` or ``REFURB_BENCH_PG_URL`` is given),
then timed at 10k and 100k parts:

* baseline: ``SELECT count(*) FROM part_event`` on the same database, the unit every figure is divided by;
* recompute, cold: every part scored and a snapshot stored (``refurb score recompute --all`` on a new database);
* recompute, warm: every part scored again, nothing changed, nothing written;
* KPIs: ``GET /circularity`` over the last year for the whole center.

Each is split into database time (queries, fetches and writes), pure maths (``refurb.scoring``: Weibull fits,
survival probabilities, ``score_parts``, ``mci_many``) and Python glue (decoding event details, building inputs and
hashes). Usage: ``python -m bench scoring [--sizes 10000,100000] [--pg URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb.auth import Role, User
from refurb.config import Settings
from refurb.db import make_engine
from refurb.metrics import scores, service
from refurb.models import metadata

EVENTS_PER_PART = 10
CATEGORIES = ["servo_motor", "reducer", "encoder", "controller_board", "cable_harness", "casting", "bearing", "brake",
              "drive", "teach_pendant"]
MATERIALS = [("steel", 0.3), ("cast iron", 0.5), ("aluminium", 0.4), ("copper", 0.1), ("electronics", 0.0)]
NOW = datetime(2026, 6, 1, tzinfo=UTC)

# Ten-event lives (a part's story at the center), with their share of parts.
LIVES: list[tuple[float, list[str]]] = [
    (0.35, ["received", "inspected", "disassembled", "cleaned", "repaired", "reassembled", "tested", "certified",
            "shipped", "received"]),
    (0.20, ["received", "inspected", "cleaned", "repaired", "reassembled", "tested_fail", "repaired", "tested",
            "certified", "shipped"]),
    (0.15, ["received", "inspected", "cleaned", "tested", "dispositioned_reuse", "installed", "tested", "certified",
            "quarantined", "released"]),
    (0.20, ["received", "inspected_poor", "disassembled", "cleaned", "tested_fail", "quarantined", "released",
            "inspected_poor", "cleaned", "dispositioned_end"]),
    (0.10, ["received", "inspected", "disassembled", "cleaned", "repaired", "reassembled", "tested", "cleaned",
            "repaired", "reassembled"]),
]
STATUS_AFTER = {"shipped": "shipped", "received": "received", "released": "certified", "reassembled": "reassembled"}


def _stamp(dt: datetime, dialect: str) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else dt.isoformat()


def _copy_rows(engine: Engine, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Bulk-insert rows: executemany on SQLite, COPY on PostgreSQL."""
    if engine.dialect.name == "sqlite":
        marks = ", ".join("?" * len(columns))
        with engine.begin() as conn:
            conn.exec_driver_sql(f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({marks})', rows)
        return
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def generate(engine: Engine, n_parts: int, seed: int = 5) -> dict[str, int]:
    """Write a center of ``n_parts`` parts with EVENTS_PER_PART events each; return row counts."""
    rng = np.random.default_rng(seed)
    dialect = engine.dialect.name
    metadata.create_all(engine)
    created = _stamp(NOW - timedelta(days=800), dialect)
    n_orgs, n_types, n_robots = 10, 20, max(1, n_parts // 20)
    _copy_rows(engine, "organisation", ["id", "name", "kind", "created_at"],
               [(i + 1, f"Customer {i + 1}", "customer", created) for i in range(n_orgs)])
    _copy_rows(engine, "user", ["id", "username", "full_name", "role", "specialties", "active", "created_at"],
               [(1, "bench", "Bench", "technician", "[]", True, created)])
    types = []
    for t in range(n_types):
        picks = rng.choice(len(MATERIALS), size=2, replace=False)
        materials = [{"material": MATERIALS[k][0], "mass_kg": float(round(rng.uniform(0.5, 20), 2)),
                      "recycled_fraction": MATERIALS[k][1]} for k in picks]
        types.append((t + 1, f"BENCH-{t + 1}", f"bench type {t + 1}", CATEGORIES[t % len(CATEGORIES)], "",
                      float(rng.choice([15000, 20000, 30000, 40000])), float(rng.choice([15000, 20000, 25000])),
                      float(round(rng.uniform(300, 5000), 2)), 3, "[]", json.dumps(materials),
                      json.dumps({"temp_rise_K": {"nominal": 10}}), created))
    _copy_rows(engine, "part_type", ["id", "part_number", "name", "category", "manufacturer", "design_life_h",
                                     "industry_average_life_h", "new_price", "max_reman_generations",
                                     "compatible_models", "materials", "test_limits", "created_at"], types)
    robot_status = rng.choice(["shipped", "certified", "in_remanufacturing", "scrapped"], size=n_robots,
                              p=[0.5, 0.2, 0.2, 0.1])
    robot_org = rng.integers(1, n_orgs + 1, size=n_robots)
    _copy_rows(engine, "robot", ["id", "serial", "model", "manufacturer", "owner_org_id", "status", "created_at"],
               [(i + 1, f"BR-{i + 1}", "KR-16", "", int(robot_org[i]), str(robot_status[i]), created)
                for i in range(n_robots)])

    life = rng.choice(len(LIVES), size=n_parts, p=[share for share, _ in LIVES])
    part_type = rng.integers(1, n_types + 1, size=n_parts)
    source_robot = rng.integers(1, n_robots + 1, size=n_parts)
    hours = np.round(rng.uniform(0, 40000, size=n_parts), 1)
    start = rng.uniform(0, 700, size=n_parts)  # days before NOW of the first intake
    grades = rng.choice(["A", "B", "C"], size=n_parts, p=[0.3, 0.5, 0.2])
    poor = rng.choice(["C", "scrap"], size=n_parts)
    ends = rng.choice(["recycle", "scrap"], size=n_parts, p=[0.6, 0.4])
    zones = rng.choice(["A", "B", "C", "D"], size=n_parts, p=[0.3, 0.45, 0.2, 0.05])
    measured = np.round(rng.uniform(0.3, 4.4, size=n_parts), 2)
    has_cost = rng.random(n_parts) < 0.3
    verdict = rng.random(n_parts) < 0.1
    installed = (life == 2) & (rng.random(n_parts) < 0.9)

    events: list[tuple[Any, ...]] = []
    parts: list[tuple[Any, ...]] = []
    installs: list[tuple[Any, ...]] = []
    event_id = 0
    for i in range(n_parts):
        pid = i + 1
        t0 = NOW - timedelta(days=float(start[i]))
        status, grade, disposition, reman, received_at = "registered", None, None, 0, None
        story = LIVES[int(life[i])][1]
        head = ""
        for seq, step in enumerate(story, start=1):
            at = t0 + timedelta(hours=6 * seq)
            kind, details = step, {}
            if step.startswith("inspected"):
                kind = "inspected"
                grade = str(poor[i]) if step == "inspected_poor" else str(grades[i])
                details = {"grade": grade, "findings": ["wear"] * int(seq % 3)}
            elif step.startswith("tested"):
                kind = "tested"
                ok = step == "tested"
                details = {"passed": ok, "test_run_id": pid, "results": [
                    {"check": "vib_mm_s", "measured": float(measured[i]), "limit": 4.5, "passed": ok,
                     "vibration_zone": str(zones[i])},
                    {"check": "temp_rise_K", "measured": 20.0 + seq, "limit": 50.0, "passed": True}]}
                if not ok:
                    details["operating_hours"] = float(hours[i])
            elif step == "repaired":
                details = {"operations": ["bearings"]} | ({"cost": float(round(rng.uniform(50, 900), 2))}
                                                          if has_cost[i] else {})
                reman += 1
            elif step == "dispositioned_reuse":
                kind, disposition = "dispositioned", "reuse"
                details = {"disposition": "reuse"} | ({"verdict": "approve_reuse", "ticket_id": pid}
                                                      if verdict[i] else {})
            elif step == "dispositioned_end":
                kind, disposition = "dispositioned", str(ends[i])
                details = {"disposition": disposition, "reason": "worn"} | (
                    {"verdict": "scrap" if disposition == "scrap" else "recycle", "ticket_id": pid}
                    if verdict[i] else {})
                status = "scrapped" if disposition == "scrap" else "recycled"
            elif step == "installed":
                details = {"robot_id": int(source_robot[i]), "position": "J1"}
                if installed[i]:
                    installs.append((pid, int(source_robot[i]), "J1", _stamp(at, dialect)))
            elif step == "received":
                received_at, disposition = at, None
            event_id += 1
            prev = head or "0" * 64
            head = f"{pid:032x}{seq:032x}"
            events.append((event_id, pid, seq, kind, 1, "bench", None, _stamp(at, dialect), json.dumps(details),
                           prev, head))
            status = STATUS_AFTER.get(kind, status) if status not in ("scrapped", "recycled") else status
        parts.append((pid, f"BSN-{pid}", int(part_type[i]), float(hours[i]), 0, "", status, grade,
                      step == "quarantined", disposition, None, int(robot_org[source_robot[i] - 1]),
                      int(source_robot[i]), int(source_robot[i]) if installed[i] else None, None, reman,
                      _stamp(received_at, dialect) if received_at else None, EVENTS_PER_PART, head, created, created))
    _copy_rows(engine, "part", ["id", "serial", "part_type_id", "operating_hours", "cycles", "notes", "status", "grade",
                                "quarantined", "disposition", "station", "owner_org_id", "source_robot_id",
                                "installed_robot_id", "parent_part_id", "reman_count", "received_at", "event_count",
                                "chain_head", "created_at", "updated_at"], parts)
    _copy_rows(engine, "part_event", ["id", "part_id", "seq", "type", "actor_id", "actor", "station", "occurred_at",
                                      "details", "prev_hash", "hash"], events)
    _copy_rows(engine, "installation", ["part_id", "robot_id", "position", "installed_at"], installs)
    with engine.begin() as conn:
        if dialect == "postgresql":
            for table in ("part", "part_event", "installation", "robot", "part_type"):
                conn.exec_driver_sql(f'SELECT setval(pg_get_serial_sequence(\'"{table}"\', \'id\'), '
                                     f'(SELECT max(id) FROM "{table}"))')
        conn.exec_driver_sql("ANALYZE")
    return {"parts": n_parts, "events": len(events), "installations": len(installs)}


@contextmanager
def _timed(into: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - started


def _wrap(owner: Any, name: str, into: dict[str, float], key: str) -> Callable[[], None]:
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with _timed(into, key):
            return original(*args, **kwargs)

    setattr(owner, name, timed)
    return lambda: setattr(owner, name, original)


BASELINE_SQL = "SELECT count(*) FROM part_event WHERE actor <> ''"


def baseline(engine: Engine) -> float:
    """Median seconds of a plain count over the events table (5 runs after one warm-up).

    The filter on an unindexed column makes both databases read every event row (a bare ``count(*)`` is answered
    from the smallest index on SQLite and would be a poor unit for work that reads the events).
    """
    runs = []
    with engine.connect() as conn:
        conn.execute(text(BASELINE_SQL)).scalar_one()
        for _ in range(5):
            started = time.perf_counter()
            conn.execute(text(BASELINE_SQL)).scalar_one()
            runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def measure(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Time recompute (cold, warm) and the KPI query on a generated center."""
    out: dict[str, Any] = {"baseline_s": baseline(engine)}
    for label, repeat in (("recompute_cold", 1), ("recompute_warm", 2)):
        for _ in range(repeat):  # warm: best of two, the machine may be busy
            with Session(engine) as session:
                started = time.perf_counter()
                stats = scores.recompute_all(session, settings=settings)
                session.commit()
                total = time.perf_counter() - started
            t = stats.timings
            run = {"total_s": total, "db_s": t.get("db_read", 0.0) + t.get("db_write", 0.0),
                   "maths_s": t.get("maths", 0.0), "glue_s": t.get("build", 0.0), "changed": stats.changed}
            if label not in out or run["total_s"] < out[label]["total_s"]:
                out[label] = run
    out["kpis"] = min((_kpis(engine, settings) for _ in range(2)), key=lambda r: r["total_s"])
    return out


def _kpis(engine: Engine, settings: Settings) -> dict[str, Any]:
    timings: dict[str, float] = {}
    restore = [_wrap(service, name, timings, "db") for name in
               ("_visits", "_shipped_robots", "_robot_members", "_collections", "_new_parts_fitted")]
    restore += [_wrap(service, name, timings, "maths") for name in ("mci_many", "company_mci")]
    viewer = User(id=1, username="bench", role=Role.MANAGER)
    try:
        with Session(engine) as session:
            started = time.perf_counter()
            kpis = service.kpis(session, viewer=viewer, start=NOW - timedelta(days=365), end=NOW, settings=settings)
            total = time.perf_counter() - started
    finally:
        for undo in restore:
            undo()
    db, maths = timings.get("db", 0.0), timings.get("maths", 0.0)  # disjoint: no maths runs inside a DB helper
    return {"total_s": total, "db_s": db, "maths_s": maths, "glue_s": total - db - maths,
            "cores": kpis["cores_received"]["count"]}


def _report(backend: str, results: dict[int, dict[str, Any]]) -> None:
    print(f"\n{backend}: seconds, and in units of the baseline ({BASELINE_SQL}, same size)")
    print(f"{'size':>8} {'what':<16} {'total':>8} {'db':>8} {'maths':>8} {'glue':>8} {'x base':>9}")
    for size, r in results.items():
        base = r["baseline_s"]
        print(f"{size:>8} {'baseline':<16} {base:>8.4f}")
        for what in ("recompute_cold", "recompute_warm", "kpis"):
            m = r[what]
            print(f"{size:>8} {what:<16} {m['total_s']:>8.3f} {m['db_s']:>8.3f} {m['maths_s']:>8.3f} "
                  f"{m['glue_s']:>8.3f} {m['total_s'] / base:>9.0f}")
    sizes = sorted(results)
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        factor = sizes[-1] / sizes[0]
        print(f"growth {sizes[0]} -> {sizes[-1]} parts (x{factor:.0f}):")
        print(f"  baseline x{large['baseline_s'] / small['baseline_s']:.1f}")
        for what in ("recompute_cold", "recompute_warm", "kpis"):
            parts = [f"{k.removesuffix('_s')} x{large[what][k] / small[what][k]:.1f}"
                     for k in ("total_s", "db_s", "maths_s", "glue_s") if small[what][k] > 0]
            print(f"  {what}: " + ", ".join(parts))


def run_backend(name: str, url_for: Callable[[int], str], sizes: list[int]) -> None:
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        url = url_for(size)
        engine = make_engine(url=url)
        started = time.perf_counter()
        counts = generate(engine, size)
        print(f"{name}: generated {counts['parts']} parts, {counts['events']} events, "
              f"{counts['installations']} installations in {time.perf_counter() - started:.1f} s", flush=True)
        settings = Settings(database_url=url, check_schema_on_start=False, ingest_enabled=False)
        results[size] = measure(engine, settings)
        engine.dispose()
    _report(name, results)


def pg_url_for(base: str, prefix: str = "bench_scoring") -> Callable[[int], str]:
    """URLs of fresh PostgreSQL schemas, one per center size (dropped and created again each time)."""
    admin = make_engine(url=base)

    def url_for(size: int) -> str:
        schema = f"{prefix}_{size}"
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}options=-csearch_path%3D{schema}"

    return url_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="part counts, comma-separated")
    parser.add_argument("--pg", default=os.environ.get("REFURB_BENCH_PG_URL"), help="PostgreSQL URL (optional)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="refurb-bench-") as tmp:
        run_backend("SQLite", lambda size: f"sqlite:///{Path(tmp) / f'center-{size}.db'}", sizes)
    if args.pg:
        run_backend("PostgreSQL", pg_url_for(args.pg), sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
