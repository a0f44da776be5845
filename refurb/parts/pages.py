"""Pages of the parts domain: the scan station, part passports and robots (thin: service -> template)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from refurb import certificates
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
    from refurb.metrics import service as metrics_service

    dpp = metrics_service.passport(session, part_id, viewer=user, settings=request.app.state.settings)
    return render(request, "part.html", **part_context(session, part), score=dpp["score"], verdicts=dpp["verdicts"],
                  circularity=dpp["circularity"], materials_info=dpp["materials"])


@router.get("/parts/{part_id}/certificate", response_class=HTMLResponse)
def part_certificate(part_id: int, request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    doc = certificates.part_certificate(session, service.get_part(session, part_id, viewer=user))
    return render(request, "certificate.html", doc=doc, pdf_url=f"/parts/{part_id}/certificate.pdf",
                  back_url=f"/parts/{part_id}")


@router.get("/parts/{part_id}/certificate.pdf")
def part_certificate_pdf(part_id: int, session: SessionDep, user: PageUser) -> Response:
    doc = certificates.part_certificate(session, service.get_part(session, part_id, viewer=user))
    return _pdf(doc, f"certificate-part-{doc['id']}.pdf")


@router.get("/robots/{robot_id}/certificate", response_class=HTMLResponse)
def robot_certificate(robot_id: int, request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    doc = certificates.robot_certificate(session, service.get_robot(session, robot_id, viewer=user), viewer=user)
    return render(request, "certificate.html", doc=doc, pdf_url=f"/robots/{robot_id}/certificate.pdf",
                  back_url=f"/robots/{robot_id}")


@router.get("/robots/{robot_id}/certificate.pdf")
def robot_certificate_pdf(robot_id: int, session: SessionDep, user: PageUser) -> Response:
    doc = certificates.robot_certificate(session, service.get_robot(session, robot_id, viewer=user), viewer=user)
    return _pdf(doc, f"certificate-robot-{doc['id']}.pdf")


def _pdf(doc: dict[str, Any], filename: str) -> Response:
    return Response(certificates.render_pdf(doc), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


@router.get("/robots", response_class=HTMLResponse)
def robots(request: Request, session: SessionDep, user: PageUser, status: str | None = None) -> HTMLResponse:
    rows, count = service.list_robots(session, viewer=user, status=status, limit=500)
    return render(request, "robots.html", robots=rows, count=count, status=status)
