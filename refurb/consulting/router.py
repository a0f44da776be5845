"""REST routes of the consulting domain: parse, authorise, call the service, shape the response."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse

from refurb.auth import CurrentUser, ManagerUser, StaffUser, User
from refurb.config import Settings
from refurb.consulting import service
from refurb.consulting.models import (
    AttachmentPublic,
    ClosePublic,
    CloseRequest,
    CommentCreate,
    CommentPublic,
    LinkIds,
    SlaPolicyPublic,
    SlaPolicySet,
    TicketCategory,
    TicketCreate,
    TicketEventPublic,
    TicketLinkPublic,
    TicketPriority,
    TicketPublic,
    TicketSlaPublic,
    TicketsPublic,
    TimeEntriesPublic,
    TimeEntryCreate,
    TimeEntryPublic,
    TransitionRequest,
    VerdictPublic,
    WatcherAdd,
)
from refurb.db import SessionDep

router = APIRouter(tags=["tickets"])
Offset = Query(0, ge=0)
Limit = Query(100, ge=1, le=500)


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]


def _one(session: SessionDep, ticket: Any, user: User) -> TicketPublic:
    return service.to_public(session, [ticket], viewer=user)[0]


@router.post("/tickets", response_model=TicketPublic, status_code=201)
def create_ticket(data: TicketCreate, session: SessionDep, user: CurrentUser, settings: SettingsDep) -> TicketPublic:
    return _one(session, service.create_ticket(session, data, requester=user, settings=settings), user)


@router.get("/tickets", response_model=TicketsPublic)
def list_tickets(session: SessionDep, user: CurrentUser,
                 state: str | None = Query(None, max_length=200, description="'open' or states, comma-separated"),
                 assignee: str | None = Query(None, max_length=20, description="'me', 'none' or a user id"),
                 category: TicketCategory | None = None, priority: TicketPriority | None = None,
                 breached: bool | None = None, org: int | None = None, part_id: int | None = None,
                 robot_id: int | None = None, sort: Literal["due", "created"] = "due", offset: int = Offset,
                 limit: int = Limit) -> TicketsPublic:
    rows, count = service.list_tickets(session, viewer=user, state=state, assignee=assignee, category=category,
                                       priority=priority, breached=breached, org_id=org, part_id=part_id,
                                       robot_id=robot_id, sort=sort, offset=offset, limit=limit)
    return TicketsPublic(data=service.to_public(session, rows, viewer=user), count=count)


@router.get("/tickets/queue", response_model=TicketsPublic)
def ticket_queue(session: SessionDep, user: StaffUser, offset: int = Offset, limit: int = Limit) -> TicketsPublic:
    rows, count = service.queue(session, viewer=user, offset=offset, limit=limit)
    return TicketsPublic(data=service.to_public(session, rows, viewer=user), count=count)


@router.get("/sla-policies", response_model=list[SlaPolicyPublic])
def list_sla_policies(session: SessionDep, _: StaffUser) -> list[SlaPolicyPublic]:
    return service.list_policies(session)


@router.put("/sla-policies", response_model=SlaPolicyPublic)
def set_sla_policy(data: SlaPolicySet, session: SessionDep, _: ManagerUser) -> SlaPolicyPublic:
    return SlaPolicyPublic.model_validate(service.set_policy(session, data), update={"source": "policy"})


@router.get("/tickets/{ticket_id}", response_model=TicketPublic)
def read_ticket(ticket_id: int, session: SessionDep, user: CurrentUser) -> TicketPublic:
    return _one(session, service.get_ticket(session, ticket_id, viewer=user), user)


@router.post("/tickets/{ticket_id}/transitions", response_model=TicketPublic)
def transition(ticket_id: int, data: TransitionRequest, session: SessionDep, user: CurrentUser,
               settings: SettingsDep) -> TicketPublic:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    return _one(session, service.transition(session, ticket, data, actor=user, settings=settings), user)


@router.post("/tickets/{ticket_id}/close", response_model=ClosePublic)
def close(ticket_id: int, data: CloseRequest, session: SessionDep, user: CurrentUser,
          settings: SettingsDep) -> ClosePublic:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    ticket, verdicts = service.close_ticket(session, ticket, data, actor=user, settings=settings)
    return ClosePublic(ticket=_one(session, ticket, user),
                       verdicts=[VerdictPublic.model_validate(v) for v in verdicts])


@router.get("/tickets/{ticket_id}/verdicts", response_model=list[VerdictPublic])
def list_verdicts(ticket_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.verdicts_for_ticket(session, service.get_ticket(session, ticket_id, viewer=user))


@router.get("/tickets/{ticket_id}/comments", response_model=list[CommentPublic])
def list_comments(ticket_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.list_comments(session, service.get_ticket(session, ticket_id, viewer=user), viewer=user)


@router.post("/tickets/{ticket_id}/comments", response_model=CommentPublic, status_code=201)
def add_comment(ticket_id: int, data: CommentCreate, session: SessionDep, user: CurrentUser,
                settings: SettingsDep) -> Any:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    return service.add_comment(session, ticket, data, author=user, settings=settings)


@router.get("/tickets/{ticket_id}/time", response_model=TimeEntriesPublic)
def list_time(ticket_id: int, session: SessionDep, user: CurrentUser) -> TimeEntriesPublic:
    entries = service.list_time(session, service.get_ticket(session, ticket_id, viewer=user), viewer=user)
    return TimeEntriesPublic(data=[TimeEntryPublic.model_validate(e) for e in entries], count=len(entries),
                             total_minutes=sum(e.minutes for e in entries))


@router.post("/tickets/{ticket_id}/time", response_model=TimeEntryPublic, status_code=201)
def add_time(ticket_id: int, data: TimeEntryCreate, session: SessionDep, user: CurrentUser) -> Any:
    return service.add_time(session, service.get_ticket(session, ticket_id, viewer=user), data, actor=user)


@router.get("/tickets/{ticket_id}/sla", response_model=TicketSlaPublic)
def read_sla(ticket_id: int, session: SessionDep, user: CurrentUser, settings: SettingsDep) -> TicketSlaPublic:
    return service.sla_view(session, service.get_ticket(session, ticket_id, viewer=user), settings=settings)


@router.get("/tickets/{ticket_id}/events", response_model=list[TicketEventPublic])
def list_events(ticket_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.list_events(session, service.get_ticket(session, ticket_id, viewer=user), viewer=user)


@router.get("/tickets/{ticket_id}/verify")
def verify(ticket_id: int, session: SessionDep, user: StaffUser) -> dict[str, Any]:
    report = service.verify_chain(session, service.get_ticket(session, ticket_id, viewer=user))
    return service.chain_report_dict(report)


@router.post("/tickets/{ticket_id}/watchers", response_model=list[int], status_code=201)
def add_watcher(ticket_id: int, data: WatcherAdd, session: SessionDep, user: CurrentUser) -> list[int]:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    return service.add_watcher(session, ticket, user_id=data.user_id, actor=user)


@router.post("/tickets/{ticket_id}/links", response_model=list[TicketLinkPublic], status_code=201)
def add_links(ticket_id: int, data: LinkIds, session: SessionDep, user: CurrentUser) -> list[TicketLinkPublic]:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    service.add_links(session, ticket, data, actor=user)
    return _one(session, ticket, user).links


@router.get("/tickets/{ticket_id}/attachments", response_model=list[AttachmentPublic])
def list_attachments(ticket_id: int, session: SessionDep, user: CurrentUser) -> Any:
    return service.list_attachments(session, service.get_ticket(session, ticket_id, viewer=user), viewer=user)


@router.post("/tickets/{ticket_id}/attachments", response_model=AttachmentPublic, status_code=201)
def add_attachment(ticket_id: int, session: SessionDep, user: CurrentUser, settings: SettingsDep,
                   file: UploadFile = File(...), internal: bool = Form(False)) -> Any:
    data = file.file.read(settings.attachment_max_bytes + 1)  # one byte more tells "too large" apart
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    return service.add_attachment(session, ticket, filename=file.filename or "", content_type=file.content_type,
                                  data=data, internal=internal, actor=user, settings=settings)


@router.get("/tickets/{ticket_id}/attachments/{attachment_id}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_attachment(ticket_id: int, attachment_id: int, session: SessionDep, user: CurrentUser,
                        settings: SettingsDep) -> FileResponse:
    ticket = service.get_ticket(session, ticket_id, viewer=user)
    row, path = service.get_attachment(session, ticket, attachment_id, viewer=user, settings=settings)
    return FileResponse(path, media_type=row.content_type, filename=row.filename,
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
