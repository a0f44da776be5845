"""Web pages over a generated center: the dashboard, a part passport, a robot, the lists and a scan.

The center of ``bench.bench_scoring.generate`` (N parts with 10 events each, bulk-written into a fresh SQLite file,
and into a fresh PostgreSQL schema when ``--pg URL`` or ``REFURB_BENCH_PG_URL`` is given) is served by the real app
(``create_app``, no background work) through FastAPI's TestClient, logged in with a password like a browser (a
manager for the pages, a technician for the scan). Each request is timed best of 3 after one warm-up, at 10k and
100k parts, and divided by ``GET /healthz`` on the same app (the baseline: the cost of a request through the stack).
Usage: ``python -m bench pages`` or ``python -m bench.bench_pages [--sizes 10000,100000] [--pg URL]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.bench_scoring import NOW, generate, pg_url_for
from refurb.app import create_app
from refurb.auth import Role, UserCreate, create_user
from refurb.config import Settings
from refurb.db import make_engine

PASSWORD = "bench-password-1"
REPEATS = 3


def _users(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":  # generate() writes ids 1.. by COPY and moves only some sequences
        with engine.begin() as conn:
            for table in ("user", "organisation"):
                conn.exec_driver_sql(f'SELECT setval(pg_get_serial_sequence(\'"{table}"\', \'id\'), '
                                     f'(SELECT max(id) FROM "{table}"))')
    with Session(engine) as session:
        for name, role in (("bench-manager", Role.MANAGER), ("bench-tech", Role.TECHNICIAN)):
            create_user(session, UserCreate(username=name, full_name=name, role=role, password=PASSWORD))
        session.commit()


def _client(app: Any, username: str) -> TestClient:
    client = TestClient(app)
    r = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    return client


def _targets(engine: Engine) -> dict[str, Any]:
    """A part with the most events, a robot with the most installed parts, a serial to scan."""
    with engine.connect() as conn:
        part_id, serial = conn.execute(text(
            "SELECT id, serial FROM part ORDER BY event_count DESC, id LIMIT 1")).one()
        robot_id = conn.execute(text(
            "SELECT installed_robot_id FROM part WHERE installed_robot_id IS NOT NULL "
            "GROUP BY installed_robot_id ORDER BY count(*) DESC, installed_robot_id LIMIT 1")).scalar()
        robot_id = robot_id or conn.execute(text("SELECT min(id) FROM robot")).scalar()
    return {"part_id": int(part_id), "serial": str(serial), "robot_id": int(robot_id)}


def _time(call: Callable[[], Any]) -> float:
    response = call()
    assert response.status_code < 400, (response.status_code, response.text[:300])
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        response = call()
        best = min(best, time.perf_counter() - started)
        assert response.status_code < 400, (response.status_code, response.text[:300])
    return best


def measure(engine: Engine, url: str) -> dict[str, float]:
    settings = Settings(database_url=url, check_schema_on_start=False, ingest_enabled=False)
    app = create_app(settings, engine=engine, start_background=False)
    _users(engine)
    target = _targets(engine)
    start, end = (NOW - timedelta(days=90)).date().isoformat(), NOW.date().isoformat()
    out: dict[str, float] = {}
    with _client(app, "bench-manager") as manager, _client(app, "bench-tech") as tech:
        pages: list[tuple[str, Callable[[], Any]]] = [
            ("GET /healthz", lambda: manager.get("/healthz")),
            ("GET /dashboard", lambda: manager.get("/dashboard")),
            ("GET /dashboard (90 days)", lambda: manager.get(f"/dashboard?start={start}&end={end}")),
            ("GET /parts/{id}", lambda: manager.get(f"/parts/{target['part_id']}")),
            ("GET /robots/{id}", lambda: manager.get(f"/robots/{target['robot_id']}")),
            ("GET /tickets", lambda: manager.get("/tickets")),
            ("GET /robots", lambda: manager.get("/robots")),
            ("POST /api/v1/scan", lambda: tech.post("/api/v1/scan", json={"code": target["serial"]})),
        ]
        for name, call in pages:
            out[name] = _time(call)
            print(f"  {name:<26} {out[name]:8.3f} s", flush=True)
    return out


def _report(backend: str, results: dict[int, dict[str, float]]) -> None:
    sizes = sorted(results)
    print(f"\n{backend}: seconds (best of {REPEATS} after a warm-up), and in units of GET /healthz (same size)")
    print(f"{'what':<26}" + "".join(f" {f'{s} parts':>14} {'x base':>8}" for s in sizes))
    for what in results[sizes[0]]:
        cells = ""
        for s in sizes:
            seconds, base = results[s][what], results[s]["GET /healthz"]
            cells += f" {seconds:>14.4f} {seconds / base:>8.0f}"
        print(f"{what:<26}{cells}")
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(f"growth {sizes[0]} -> {sizes[-1]} parts: " + ", ".join(
            f"{what.removeprefix('GET ').removeprefix('POST ')} x{large[what] / small[what]:.1f}"
            for what in small))


def run_backend(name: str, url_for: Callable[[int], str], sizes: list[int]) -> None:
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        url = url_for(size)
        engine = make_engine(url=url)
        started = time.perf_counter()
        counts = generate(engine, size)
        print(f"{name}: generated {counts['parts']} parts, {counts['events']} events in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
        results[size] = measure(engine, url)
        engine.dispose()
    _report(name, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="part counts, comma-separated")
    parser.add_argument("--pg", default=os.environ.get("REFURB_BENCH_PG_URL"), help="PostgreSQL URL (optional)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="refurb-bench-") as tmp:
        if not args.no_sqlite:
            run_backend("SQLite", lambda size: f"sqlite:///{Path(tmp) / f'center-{size}.db'}", sizes)
    if args.pg:
        run_backend("PostgreSQL", pg_url_for(args.pg, "bench_pages"), sizes)
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
