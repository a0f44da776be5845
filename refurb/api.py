"""The one place that mounts the domain routers under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from refurb import users
from refurb.parts import router as parts_router

API_PREFIX = "/api/v1"


def build_api_router() -> APIRouter:
    """Collect every domain's routes."""
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(users.router)
    api.include_router(parts_router.router)
    return api
