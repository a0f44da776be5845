"""REST routes of the parts domain: parse, authorise, call one service function, shape the response."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from refurb.auth import CurrentUser, ManagerUser, StaffUser, TechnicianUser
from refurb.config import Settings
from refurb.db import SessionDep
from refurb.errors import ValidationError
from refurb.parts import labels, service
from refurb.parts.models import (
    EventCreate,
    EventType,
    PartCreate,
    PartEventPublic,
    PartPublic,
    PartsPublic,
    PartTypeCreate,
    PartTypePublic,
    PartTypesPublic,
    PartTypeUpdate,
    PartUpdate,
    RobotCreate,
    RobotPublic,
    RobotsPublic,
    RobotUpdate,
)

router = APIRouter()
Offset = Query(0, ge=0)
Limit = Query(100, ge=1, le=500)


def _pt_public(pt: Any) -> PartTypePublic:
    return PartTypePublic.model_validate(pt, update={"mass_kg": pt.mass_kg})


# --- part types ------------------------------------------------------------------------------------------------


@router.post("/part-types", response_model=PartTypePublic, status_code=201, tags=["catalog"])
def create_part_type(data: PartTypeCreate, session: SessionDep, _: ManagerUser) -> PartTypePublic:
    return _pt_public(service.create_part_type(session, data))


@router.get("/part-types", response_model=PartTypesPublic, tags=["catalog"])
def list_part_types(session: SessionDep, _: CurrentUser, category: str | None = None, q: str | None = None,
                    offset: int = Offset, limit: int = Limit) -> PartTypesPublic:
    rows, count = service.list_part_types(session, category=category, q=q, offset=offset, limit=limit)
    return PartTypesPublic(data=[_pt_public(r) for r in rows], count=count)


@router.get("/part-types/{part_type_id}", response_model=PartTypePublic, tags=["catalog"])
def read_part_type(part_type_id: int, session: SessionDep, _: CurrentUser) -> PartTypePublic:
    return _pt_public(service.get_part_type(session, part_type_id))


@router.patch("/part-types/{part_type_id}", response_model=PartTypePublic, tags=["catalog"])
def update_part_type(part_type_id: int, data: PartTypeUpdate, session: SessionDep, _: ManagerUser) -> PartTypePublic:
    return _pt_public(service.update_part_type(session, service.get_part_type(session, part_type_id), data))


# --- robots ----------------------------------------------------------------------------------------------------


@router.post("/robots", response_model=RobotPublic, status_code=201, tags=["robots"])
def create_robot(data: RobotCreate, session: SessionDep, user: StaffUser) -> Any:
    return service.create_robot(session, data, actor=user)


@router.get("/robots", response_model=RobotsPublic, tags=["robots"])
def list_robots(session: SessionDep, user: CurrentUser, status: str | None = None, model: str | None = None,
                owner_org_id: int | None = None, offset: int = Offset, limit: int = Limit) -> RobotsPublic:
    rows, count = service.list_robots(session, viewer=user, status=status, model=model, owner_org_id=owner_org_id,
                                      offset=offset, limit=limit)
    return RobotsPublic(data=[RobotPublic.model_validate(r) for r in rows], count=count)


@router.get("/robots/{robot_id}", response_model=RobotPublic, tags=["robots"])
def read_robot(robot_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.get_robot(session, robot_id, viewer=user)


@router.patch("/robots/{robot_id}", response_model=RobotPublic, tags=["robots"])
def update_robot(robot_id: int, data: RobotUpdate, session: SessionDep, _: ManagerUser) -> Any:
    return service.update_robot(session, service.get_robot(session, robot_id), data)


@router.get("/robots/{robot_id}/parts", tags=["robots"])
def robot_parts(robot_id: int, session: SessionDep, user: CurrentUser,
                at: datetime | None = Query(None, description="ISO time; default now")) -> dict[str, Any]:
    robot = service.get_robot(session, robot_id, viewer=user)
    if at is not None and at.tzinfo is None:
        raise ValidationError("at must carry a time zone, e.g. 2026-01-31T09:00:00+09:00 or ...Z")
    return {"robot_id": robot.id, "serial": robot.serial, "at": at, "parts": service.robot_parts_at(session, robot, at)}


# --- parts -----------------------------------------------------------------------------------------------------


@router.post("/parts", response_model=PartPublic, status_code=201, tags=["parts"])
def create_part(data: PartCreate, session: SessionDep, _: TechnicianUser) -> Any:
    return service.create_part(session, data)


@router.get("/parts", response_model=PartsPublic, tags=["parts"])
def list_parts(session: SessionDep, user: CurrentUser, status: str | None = None, part_type_id: int | None = None,
               robot_id: int | None = None, grade: str | None = None, quarantined: bool | None = None,
               serial: str | None = None, owner_org_id: int | None = None, offset: int = Offset,
               limit: int = Limit) -> PartsPublic:
    rows, count = service.list_parts(session, viewer=user, status=status, part_type_id=part_type_id,
                                     robot_id=robot_id, grade=grade, quarantined=quarantined, serial=serial,
                                     owner_org_id=owner_org_id, offset=offset, limit=limit)
    return PartsPublic(data=[PartPublic.model_validate(r) for r in rows], count=count)


@router.get("/parts/export.csv", response_class=PlainTextResponse, tags=["parts"])
def export_parts(session: SessionDep, user: CurrentUser) -> PlainTextResponse:
    return PlainTextResponse(service.export_parts_csv(session, viewer=user), media_type="text/csv")


class ImportResult(BaseModel):
    imported: int
    part_ids: list[int]


@router.post("/parts/import", response_model=ImportResult, status_code=201, tags=["parts"],
             openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}},
                                            "required": True}})
async def import_parts(request: Request, session: SessionDep, _: ManagerUser) -> ImportResult:
    body = await request.body()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("the CSV must be UTF-8 text") from exc
    parts = service.import_parts_csv(session, text)
    return ImportResult(imported=len(parts), part_ids=[p.id or 0 for p in parts])


@router.get("/parts/{part_id}", response_model=PartPublic, tags=["parts"])
def read_part(part_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.get_part(session, part_id, viewer=user)


@router.patch("/parts/{part_id}", response_model=PartPublic, tags=["parts"])
def update_part(part_id: int, data: PartUpdate, session: SessionDep, _: TechnicianUser) -> Any:
    return service.update_part(session, service.get_part(session, part_id, for_update=True), data)


@router.post("/parts/{part_id}/events", response_model=PartEventPublic, status_code=201, tags=["parts"])
def record_event(part_id: int, data: EventCreate, session: SessionDep, user: TechnicianUser) -> Any:
    part = service.get_part(session, part_id, for_update=True)
    return service.record_event(session, part, data, actor=user)


@router.get("/parts/{part_id}/events", response_model=list[PartEventPublic], tags=["parts"])
def list_events(part_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.list_events(session, service.get_part(session, part_id, viewer=user))


@router.get("/parts/{part_id}/next-actions", tags=["parts"])
def next_actions(part_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    part = service.get_part(session, part_id, viewer=user)
    return {"part_id": part.id, "status": part.status, "quarantined": part.quarantined,
            "next_actions": service.next_actions(part)}


@router.get("/parts/{part_id}/verify", tags=["parts"])
def verify(part_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    report = service.verify_chain(session, service.get_part(session, part_id, viewer=user))
    return service.chain_report_dict(report)


@router.get("/parts/{part_id}/genealogy", tags=["parts"])
def genealogy(part_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    return service.genealogy(session, service.get_part(session, part_id, viewer=user))


@router.get("/parts/{part_id}/label.svg", tags=["parts"], response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}})
def label(part_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Response:
    part = service.get_part(session, part_id, viewer=user)
    pt = service.get_part_type(session, part.part_type_id)
    settings: Settings = request.app.state.settings
    content = labels.label_content(part_id=part.id or 0, serial=part.serial, gtin=pt.gtin,
                                   public_base_url=settings.public_base_url,
                                   digital_link_base=settings.gs1_digital_link_base)
    svg = labels.label_svg(content=content, serial=part.serial, part_number=pt.part_number, name=pt.name)
    return Response(svg, media_type="image/svg+xml", headers={"X-Label-Content": content})


# --- scanning --------------------------------------------------------------------------------------------------


class ScanRequest(BaseModel):
    code: str = Field(max_length=2048, description="exactly what the scanner typed (GS may be ASCII 29 or <GS>)")
    action: EventType | EventCreate | None = Field(
        default=None, description="optional step to record on the scanned part: an event type or a full event")


@router.post("/scan", tags=["scan"])
def scan(body: ScanRequest, session: SessionDep, user: StaffUser) -> dict[str, Any]:
    action = EventCreate(type=body.action) if isinstance(body.action, EventType) else body.action
    return service.scan(session, code=body.code, action=action, actor=user)
