"""Background services started with the web app (``refurb serve``): each has ``stop()``."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI


class Service(Protocol):
    def stop(self) -> None: ...


def start(app: FastAPI) -> list[Service]:
    """Start what the settings ask for alongside the web app and return the started services."""
    services: list[Any] = []
    if app.state.settings.sla_check_interval_s > 0:
        from refurb.consulting.sla_worker import SlaChecker

        services.append(SlaChecker(app.state.engine, app.state.settings).start())
    if app.state.settings.ingest_enabled:
        from refurb.telemetry.ingest import start_services

        services.extend(start_services(app.state.settings, app.state.engine))
    return services
