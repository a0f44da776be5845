"""The application factory: ``create_app(settings)`` builds everything; nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine

from refurb import __version__
from refurb.api import build_api_router
from refurb.config import Settings, get_settings
from refurb.db import make_engine
from refurb.errors import install_error_handlers


class SchemaOutOfDateError(RuntimeError):
    """The database schema is not at the code's migration head."""


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database whose schema is missing or behind the code's migrations."""
    from refurb.migrations import runner

    current, head = runner.current_revision(engine), runner.head_revision()
    if current != head:
        state = "has no refurb schema" if current is None else f"is at revision {current}"
        raise SchemaOutOfDateError(
            f"the database {engine.url.render_as_string(hide_password=True)} {state}, the code needs {head}: "
            "run `refurb db upgrade` first")


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               start_background: bool = True) -> FastAPI:
    """Build the FastAPI app for these settings (tests pass their own engine and no background work)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings)
    if settings.check_schema_on_start:
        check_schema(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: list[Any] = []
        if start_background:
            from refurb import background

            services = background.start(app)
        try:
            yield
        finally:
            for svc in reversed(services):
                svc.stop()

    app = FastAPI(title="refurb", version=__version__, lifespan=lifespan,
                  description="Robot remanufacturing center: parts, telemetry, consulting, reuse scores, circularity.")
    app.state.settings = settings
    app.state.engine = engine
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse({"detail": f"request body larger than {settings.max_body_bytes} bytes"},
                                status_code=413)
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(build_api_router())
    from refurb import web

    web.mount(app)
    return app
