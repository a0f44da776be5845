"""The periodic SLA checker: runs in the background, never dies, and concurrent checks record alerts once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from refurb import background
from refurb.app import create_app
from refurb.config import Settings
from refurb.consulting import service
from refurb.consulting.models import TicketEvent
from refurb.consulting.sla_worker import SlaChecker
from refurb.db import make_engine, session_scope
from refurb.models import metadata
from tests.consulting.helpers import kst, open_ticket
from tests.factories import make_user


def _wait(predicate, timeout_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_checker_runs_passes_and_stops(engine: Engine, session: Session, settings: Settings) -> None:
    open_ticket(session, make_user(session, "customer")[0], settings, priority="urgent")
    checker = SlaChecker(engine, settings, interval_s=0.05).start()
    try:
        assert _wait(lambda: checker.passes >= 3)
    finally:
        checker.stop()
    assert checker.last_report is not None
    assert checker.last_report.checked == 1
    passes = checker.passes
    time.sleep(0.2)
    assert checker.passes == passes  # stopped means stopped
    alerts = session.exec(select(TicketEvent).where(TicketEvent.level.is_not(None))).all()
    assert sorted(e.level for e in alerts) == [1, 2, 3]  # June 2026 is long past: every level, once


def test_a_failing_pass_does_not_stop_the_loop(tmp_path: Path, settings: Settings) -> None:
    broken = make_engine(url=f"sqlite:///{tmp_path / 'no-schema.db'}")  # no tables: every pass fails
    checker = SlaChecker(broken, settings, interval_s=0.02).start()
    try:
        assert _wait(lambda: checker.failures >= 3)
        assert checker._thread is not None
        assert checker._thread.is_alive()
    finally:
        checker.stop()
    assert checker.passes == 0


def test_background_start_respects_the_interval_setting(engine: Engine, settings: Settings) -> None:
    off = create_app(settings.model_copy(update={"sla_check_interval_s": 0}), engine=engine, start_background=False)
    assert background.start(off) == []
    on = create_app(settings.model_copy(update={"sla_check_interval_s": 3600}), engine=engine,
                    start_background=False)
    services = background.start(on)
    try:
        assert any(isinstance(s, SlaChecker) for s in services)
    finally:
        for s in services:
            s.stop()


def test_concurrent_checks_record_each_alert_once(engine: Engine, tmp_path: Path, settings: Settings) -> None:
    """Four checkers at once, twice over, on a real multi-connection database (a SQLite file, or PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        engine = make_engine(url=f"sqlite:///{tmp_path / 'concurrent.db'}")
        metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as s:
        customer = make_user(s, "customer")[0]
        tickets = [open_ticket(s, customer, settings, priority="high") for _ in range(5)]
        make_user(s, "consultant", specialties=["testing"])
        make_user(s, "manager")
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(5)
            for _ in range(2):
                with session_scope(engine) as s:
                    service.check_sla(s, settings=settings, now=kst(2026, 6, 8, 18))
        except Exception as exc:  # noqa: BLE001 - SQLite may refuse a writer ("database is locked"): a lost pass
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(failures) < 8  # at least one pass got through
    with Session(engine) as s:
        for t in tickets:
            levels = [e.level for e in s.exec(select(TicketEvent).where(TicketEvent.ticket_id == t.id,
                                                                        TicketEvent.level.is_not(None)))]
            assert sorted(levels) == [1, 2, 3], t.id
            assert service.verify_chain(s, service.get_ticket(s, t.id, viewer=None)).valid
