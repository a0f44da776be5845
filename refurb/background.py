"""Background services started with the web app (``refurb serve``): each has ``stop()``."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import FastAPI


class Service(Protocol):
    def stop(self) -> None: ...


def start(app: FastAPI) -> list[Service]:
    """Start what the settings ask for alongside the web app and return the started services."""
    services: list[Any] = []
    return services
