"""The one place that mounts the domain routers under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from refurb import users
from refurb.consulting import router as consulting_router
from refurb.metrics import router as metrics_router
from refurb.parts import router as parts_router
from refurb.telemetry import router as telemetry_router
from refurb.telemetry import runs_router

API_PREFIX = "/api/v1"


def build_api_router() -> APIRouter:
    """Collect every domain's routes."""
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(users.router)
    api.include_router(parts_router.router)
    api.include_router(telemetry_router.router)
    api.include_router(runs_router.router)
    api.include_router(metrics_router.router)
    api.include_router(consulting_router.router)
    return api
