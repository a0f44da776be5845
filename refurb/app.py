"""The application factory: ``create_app(settings)`` builds everything; nothing happens at import time."""

from __future__ import annotations

import json
import math
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


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not a number JSON allows; send finite numbers only")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a finite number")
    return value


def non_finite_json(body: bytes) -> str | None:
    """Say what is wrong if a JSON body holds NaN, Infinity or an overflowing number (Python's json accepts them,
    SQLite would store NaN as NULL); None when it is fine or not JSON at all (the route then reports that)."""
    if not body:
        return None
    try:
        json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        text = str(exc)
        if "JSON allows" in text or "too large" in text:
            return text.split(": line")[0]
    return None


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
        # (the telemetry import judges each row itself, so one NaN row is refused without refusing the file)
        if (request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", "")
                and request.url.path != "/api/v1/telemetry/import"):
            problem = non_finite_json(await request.body())
            if problem:
                return JSONResponse({"detail": problem}, status_code=422)
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(build_api_router())
    from refurb import web

    web.mount(app)
    return app
