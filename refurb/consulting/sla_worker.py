"""The periodic SLA check inside the server: a daemon thread that runs ``service.check_sla`` every N seconds."""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from refurb.config import Settings
from refurb.consulting import service
from refurb.db import session_scope

log = logging.getLogger(__name__)


class SlaChecker:
    """Run the SLA check now and then every ``interval_s`` seconds until ``stop()``; a failing pass is logged and
    the next one runs as planned (the loop never raises)."""

    def __init__(self, engine: Engine, settings: Settings, *, interval_s: float | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.interval_s = settings.sla_check_interval_s if interval_s is None else interval_s
        if self.interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {self.interval_s!r}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.failures = 0
        self.last_report: service.SlaCheckReport | None = None

    def run_once(self) -> service.SlaCheckReport | None:
        """One pass in its own session (committed once); None if the pass failed."""
        try:
            with session_scope(self.engine) as session:
                report = service.check_sla(session, settings=self.settings)
        except Exception:  # noqa: BLE001 - e.g. the database is down: try again next interval
            self.failures += 1
            log.exception("SLA check pass failed")
            return None
        self.passes += 1
        self.last_report = report
        if report.warnings or report.escalations:
            log.info("SLA check: %d warning(s), %d escalation(s) over %d open ticket(s)", report.warnings,
                     report.escalations, report.checked)
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval_s)

    def start(self) -> SlaChecker:
        """Start the daemon thread (idempotent) and return self."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="refurb-sla-check", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the loop to end and wait for the pass in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
