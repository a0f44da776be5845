"""Pages of the parts domain: the scan station, part passports and robots (thin: service -> template)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from refurb.auth import Role
from refurb.db import SessionDep
from refurb.parts import service
from refurb.parts.models import Grade
from refurb.web import PageUser, render, require_page_roles

router = APIRouter(include_in_schema=False)
STAFF = require_page_roles(Role.TECHNICIAN, Role.CONSULTANT, Role.MANAGER, Role.ADMIN)


@router.get("/scan", response_class=HTMLResponse, dependencies=[STAFF])
def scan_station(request: Request, user: PageUser) -> HTMLResponse:
    may_record = user.role in (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN)
    return render(request, "scan.html", may_record=may_record, grades=[g.value for g in Grade])


def part_context(session: Any, part: Any) -> dict[str, Any]:
    """Everything the passport page shows that the parts domain owns."""
    pt = service.get_part_type(session, part.part_type_id)
    events = service.list_events(session, part)
    return {
        "part": part,
        "part_type": pt,
        "events": events,
        "verify": service.verify_chain(session, part),
        "genealogy": service.genealogy(session, part),
        "tests": [e for e in events if e.type == "tested"],
        "next_actions": service.next_actions(part),
    }


@router.get("/parts/{part_id}", response_class=HTMLResponse)
def passport(part_id: int, request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    part = service.get_part(session, part_id, viewer=user)
    return render(request, "part.html", **part_context(session, part))


@router.get("/robots", response_class=HTMLResponse)
def robots(request: Request, session: SessionDep, user: PageUser, status: str | None = None) -> HTMLResponse:
    rows, count = service.list_robots(session, viewer=user, status=status, limit=500)
    return render(request, "robots.html", robots=rows, count=count, status=status)
