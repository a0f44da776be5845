"""Pages of the consulting domain: the consultant's queue and the ticket view (thin: service -> template).

Forms post to page routes that answer with a 303 back to the ticket. A refused action (403/409/413/422) renders the
ticket page again with the service's message and what the user typed; the action runs inside a savepoint, so a
refusal half-way through (a verdict the part state machine refuses after earlier verdicts were applied) leaves
nothing behind, exactly as the API's rolled-back request does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError as ModelError
from sqlmodel import Session
from starlette.datastructures import UploadFile as StarletteUpload

from refurb import auth
from refurb.auth import STAFF_ROLES, Role, User
from refurb.config import Settings
from refurb.consulting import service, sla
from refurb.consulting.models import (
    CloseRequest,
    CommentCreate,
    LinkKind,
    Ticket,
    TicketCategory,
    TicketCreate,
    TicketPriority,
    TicketState,
    TimeEntryCreate,
    TransitionRequest,
    VerdictCreate,
    VerdictKind,
)
from refurb.db import get_session, utcnow
from refurb.errors import NotFoundError, RefurbError, ValidationError
from refurb.parts import service as parts_service
from refurb.web import page_user, render

router = APIRouter(include_in_schema=False)

# FastAPI runs the exit code of a yield dependency after the response has gone out unless it is function-scoped, so
# with the shared SessionDep the browser could follow our 303 and read the ticket before the change is committed.
# Here the session commits (or rolls back) when the page function returns, before the redirect is sent.
PageSession = Annotated[Session, Depends(get_session, scope="function")]


def _page_user(request: Request, session: PageSession) -> User:
    return page_user(request, session)


PageUser = Annotated[User, Depends(_page_user)]

PAGE_SIZE = 100
SCOPES = {"queue": "My queue", "mine": "Assigned to me", "all": "All I can see"}
BREACHED = {"": "any", "yes": "breached", "no": "not breached"}
DONE = {
    "created": "Ticket opened.",
    "comment": "Comment added.",
    "time": "Time booked.",
    "moved": "Ticket updated.",
    "attachment": "File attached.",
    "closed": "Ticket closed; the verdicts are recorded on the parts.",
}
MOVE_LABELS = {
    "triaged": "Triage", "in_progress": "Start work", "waiting_customer": "Wait for customer",
    "waiting_parts": "Wait for parts", "waiting_vendor": "Wait for vendor", "resolved": "Resolve",
}
VERDICTS_BY_KIND: dict[str, list[str]] = {
    "part": ["approve_reuse", "require_remanufacture", "require_replacement", "recycle", "scrap", "quarantine",
             "release", "process_change"],
    "part_type": ["quarantine", "release", "process_change"],
    "robot": ["process_change"],
}
VERDICT_LABELS = {
    "approve_reuse": "approve reuse", "require_remanufacture": "require remanufacture",
    "require_replacement": "require replacement of a sub-part", "recycle": "recycle", "scrap": "scrap",
    "quarantine": "quarantine", "release": "release from quarantine", "process_change": "process change",
}


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _is_staff(user: User) -> bool:
    return user.role in STAFF_ROLES


def _clock(settings: Settings) -> Any:
    """A formatter for the templates: instants shown in the center's time zone."""
    zone = ZoneInfo(settings.sla_timezone)

    def fmt(value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return value.astimezone(zone).strftime(pattern) if value else "—"

    return fmt


def _error_text(exc: Exception) -> tuple[str, int]:
    """The message and status of a refusal: the service's own words, or the first form field that was wrong."""
    if isinstance(exc, RefurbError):
        return exc.message, exc.status_code
    assert isinstance(exc, ModelError)
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts) or "invalid input", 422


@contextmanager
def _all_or_nothing(session: Session) -> Iterator[None]:
    """Run one service call in a savepoint: a refusal rolls back whatever it had already written."""
    with session.begin_nested():
        yield


def _back(ticket_id: int, done: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"/tickets/{ticket_id}?done={done}{anchor}", status_code=303)


def _usernames(session: Session, ids: set[int | None]) -> dict[int, str]:
    out = {}
    for user_id in ids:
        if user_id is None:
            continue
        try:
            out[user_id] = auth.get_user(session, user_id).username
        except NotFoundError:
            out[user_id] = f"user {user_id}"
    return out


def _org_names(session: Session) -> dict[int, str]:
    return {o.id: o.name for o in auth.list_organisations(session) if o.id is not None}


# --- SLA figures for a row or the panel ------------------------------------------------------------------------


def _sla_figures(session: Session, ticket: Ticket, *, settings: Settings, cal: sla.BusinessCalendar,
                 now: datetime) -> dict[str, Any]:
    """The live SLA view of the service, plus what the countdown script needs: the running clock's due time and
    the instant the warning colour starts (both absolute, so the browser only compares them with its clock)."""
    view = service.sla_view(session, ticket, settings=settings, now=now)
    stopped = ticket.state in service.STOPPED_STATES
    responded = ticket.first_response_at is not None
    clock = "resolution" if responded else "response"
    due = view.resolution_due_at if responded else view.response_due_at
    remaining_h = view.resolution_remaining_h if responded else view.response_remaining_h
    used_h = view.resolution_used_h if responded else view.response_used_h
    target_h = ticket.resolution_target_h if responded else ticket.response_target_h
    running = not stopped and not view.paused
    warn_at = None
    if running and view.level == "ok":
        to_warning_s = (settings.sla_warn_fraction * target_h - used_h) * 3600
        if to_warning_s > 0:
            warn_at = sla.add_business_seconds(cal, now, to_warning_s)
    return {"view": view, "clock": clock, "due": due, "remaining_h": remaining_h, "used_h": used_h,
            "target_h": target_h, "running": running, "paused": view.paused, "stopped": stopped,
            "level": str(view.level), "warn_at": warn_at,
            "percent": round(100 * view.fraction_used)}


# --- the queue -------------------------------------------------------------------------------------------------


def _choice(value: str, enum: Any, name: str) -> Any:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise ValidationError(f"{name}: unknown value {value!r}; use one of {allowed}") from None


def _queue_filter(tickets: list[Ticket], *, state: str, category: Any, priority: Any, breached: bool | None,
                  now: datetime) -> list[Ticket]:
    """Narrow the service's queue (open tickets of mine or of my specialties) with the page's filters."""
    states = None if state in ("", "open", "all") else {s.strip() for s in state.split(",")}
    return [t for t in tickets
            if (states is None or t.state in states) and (category is None or t.category == category)
            and (priority is None or t.priority == priority)
            and (breached is None or service.breached_now(t, now) == breached)]


def _queue_page(request: Request, session: Session, user: User, *, state: str = "open", scope: str = "",
                category: str = "", priority: str = "", breached: str = "", offset: int = 0, done: str = "",
                error: str | None = None, form: dict[str, Any] | None = None, status_code: int = 200
                ) -> HTMLResponse:
    settings = _settings(request)
    now = utcnow()
    may_queue = user.role in service.ASSIGNABLE_ROLES
    if scope not in SCOPES or not may_queue:
        scope = ("queue" if user.role == Role.CONSULTANT else "all") if may_queue else "all"
    cat = _choice(category, TicketCategory, "category")
    prio = _choice(priority, TicketPriority, "priority")
    flag = {"yes": True, "no": False}.get(breached)
    offset = max(offset, 0)
    if scope == "queue":
        rows, _ = service.queue(session, viewer=user, limit=500)
        rows = _queue_filter(rows, state=state, category=cat, priority=prio, breached=flag, now=now)
        count = len(rows)
        rows = rows[offset:offset + PAGE_SIZE]
    else:
        rows, count = service.list_tickets(session, viewer=user, state=None if state == "all" else state or None,
                                           assignee="me" if scope == "mine" else None, category=cat, priority=prio,
                                           breached=flag, sort="due", offset=offset, limit=PAGE_SIZE, now=now)
    cal = service.calendar_from_settings(settings)
    names = _usernames(session, {t.assignee_id for t in rows})
    orgs = _org_names(session)
    items = [{"ticket": t, "sla": _sla_figures(session, t, settings=settings, cal=cal, now=now),
              "assignee": names.get(t.assignee_id or 0), "org": orgs.get(t.requester_org_id or 0)} for t in rows]
    filters = {"state": state, "scope": scope, "category": category, "priority": priority, "breached": breached}

    def page_url(at: int) -> str:
        return "/tickets?" + urlencode({k: v for k, v in filters.items() if v} | ({"offset": at} if at else {}))

    robots, _ = parts_service.list_robots(session, viewer=user, limit=500)
    return render(request, "tickets.html", status_code=status_code, items=items, count=count, offset=offset,
                  page_size=PAGE_SIZE, filters=filters, scopes=SCOPES if may_queue else {}, states=list(TicketState),
                  categories=list(TicketCategory), priorities=list(TicketPriority), breached_options=BREACHED,
                  prev_url=page_url(max(offset - PAGE_SIZE, 0)) if offset else None,
                  next_url=page_url(offset + PAGE_SIZE) if offset + PAGE_SIZE < count else None,
                  flash=DONE.get(done), error=error, form=form or {}, robots=robots, fmt=_clock(settings),
                  now=now, tz=settings.sla_timezone)


@router.get("/tickets", response_class=HTMLResponse)
def queue_page(request: Request, session: PageSession, user: PageUser, state: str = "open", scope: str = "",
               category: str = "", priority: str = "", breached: str = "", offset: int = 0,
               done: str = "") -> HTMLResponse:
    return _queue_page(request, session, user, state=state, scope=scope, category=category, priority=priority,
                       breached=breached, offset=offset, done=done)


def _part_ids(session: Session, user: User, text: str) -> list[int]:
    """Part ids from what the requester typed: ids, or serials of parts the requester may see."""
    ids: list[int] = []
    for token in text.replace(";", ",").replace("\n", ",").split(","):
        token = token.strip()
        if not token:
            continue
        if token.isdigit():
            ids.append(int(token))
            continue
        rows, _ = parts_service.list_parts(session, viewer=user, serial=token, limit=10)
        if not rows:
            raise ValidationError(f"parts: no part with serial {token!r} that you may see")
        ids.extend(p.id for p in rows if p.id is not None)
    return ids


@router.post("/tickets")
def create_ticket(request: Request, session: PageSession, user: PageUser, title: Annotated[str, Form()] = "",
                  description: Annotated[str, Form()] = "", category: Annotated[str, Form()] = "other",
                  priority: Annotated[str, Form()] = "normal", parts: Annotated[str, Form()] = "",
                  robot_ids: Annotated[list[int], Form()] = []) -> Response:  # noqa: B006 - FastAPI form default
    form = {"title": title, "description": description, "category": category, "priority": priority,
            "parts": parts, "robot_ids": robot_ids}
    try:
        with _all_or_nothing(session):
            data = TicketCreate(title=title.strip(), description=description, category=category, priority=priority,
                                part_ids=_part_ids(session, user, parts), robot_ids=robot_ids)
            ticket = service.create_ticket(session, data, requester=user, settings=_settings(request))
    except (RefurbError, ModelError) as exc:
        message, status = _error_text(exc)
        return _queue_page(request, session, user, error=message, form=form, status_code=status)
    assert ticket.id is not None
    return _back(ticket.id, "created")


# --- one ticket ------------------------------------------------------------------------------------------------


def _link_items(session: Session, ticket_links: list[Any], user: User) -> list[dict[str, Any]]:
    """Label and address of each linked item the viewer may see (the service already dropped the others)."""
    items = []
    for link in ticket_links:
        kind, target_id = LinkKind(link.kind), link.target_id
        item: dict[str, Any] = {"kind": kind.value, "id": target_id, "label": f"{kind.value} #{target_id}",
                                "href": None, "status": None, "quarantined": False, "sub_parts": [],
                                "verdicts": VERDICTS_BY_KIND.get(kind.value, [])}
        try:
            if kind == LinkKind.PART:
                part = parts_service.get_part(session, target_id)
                item |= {"label": part.serial, "status": str(part.status), "quarantined": part.quarantined,
                         "detail": parts_service.get_part_type(session, part.part_type_id).part_number}
                try:  # a customer's ticket may name a part not yet recorded as theirs: no passport for them
                    parts_service.get_part(session, target_id, viewer=user)
                    item["href"] = f"/parts/{target_id}"
                except NotFoundError:
                    pass
                if _is_staff(user):
                    item["sub_parts"] = [{"id": c["part_id"], "serial": c["serial"]}
                                         for c in parts_service.genealogy(session, part)["children"]]
            elif kind == LinkKind.ROBOT:
                robot = parts_service.get_robot(session, target_id)
                item |= {"label": robot.serial, "status": str(robot.status), "detail": robot.model,
                         "href": f"/robots/{target_id}"}
            elif kind == LinkKind.PART_TYPE:
                pt = parts_service.get_part_type(session, target_id)
                item |= {"label": pt.part_number, "detail": pt.name}
            elif kind == LinkKind.TEST_RUN:
                item |= {"label": f"test run #{target_id}",
                         "href": f"/api/v1/test-runs/{target_id}" if _is_staff(user) else None}
            else:
                item["label"] = f"alarm #{target_id}"
        except NotFoundError:
            item["detail"] = "missing"
        items.append(item)
    return items


def _moves(ticket: Ticket, user: User) -> dict[str, Any]:
    """Which transition buttons to offer; the service decides in the end, this only hides hopeless ones."""
    allowed = [s for s in service.allowed_next(ticket) if s != "closed"]
    manager = service.is_manager(user)
    mine = ticket.assignee_id is not None and ticket.assignee_id == user.id
    reopening = ticket.state in service.STOPPED_STATES
    buttons: list[tuple[str, str]] = []
    if user.role == Role.CUSTOMER:
        if reopening:
            buttons = [(s, "Reopen") for s in allowed if s in ("in_progress", "triaged")][:1]
        return {"buttons": buttons, "take": False, "assign": False, "close": False}
    if user.role == Role.TECHNICIAN:
        return {"buttons": [], "take": False, "assign": False, "close": False}
    for s in allowed:
        if s == "assigned" or (s == "in_progress" and ticket.assignee_id is None):
            continue
        if manager or mine or s == "triaged":
            label = f"Reopen ({s.replace('_', ' ')})" if reopening else MOVE_LABELS.get(s, s)
            buttons.append((s, label))
    may_assign = "assigned" in allowed
    return {"buttons": buttons, "take": may_assign and not mine and user.role in service.ASSIGNABLE_ROLES,
            "assign": may_assign and (manager or mine),
            "close": "closed" in service.allowed_next(ticket) and (manager or mine)}


def _describe(details: dict[str, Any]) -> str:
    """An event's details as one line of text (the template escapes it)."""
    out = []
    for key, value in details.items():
        if value in (None, "", [], {}):
            continue
        text = json.dumps(value, default=str, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
        out.append(f"{key}: {text[:400]}")
    return "; ".join(out)


def _assignees(session: Session) -> list[User]:
    out: list[User] = []
    for role in (Role.CONSULTANT, Role.MANAGER, Role.ADMIN):
        rows, _ = auth.list_users(session, role=role, limit=500)
        out.extend(u for u in rows if u.active)
    return out


def _ticket_page(request: Request, session: Session, user: User, ticket_id: int, *, done: str = "",
                 error: str | None = None, error_at: str = "", form: dict[str, Any] | None = None,
                 status_code: int = 200) -> HTMLResponse:
    settings = _settings(request)
    now = utcnow()
    ticket = service.get_ticket(session, ticket_id, viewer=user)
    public = service.to_public(session, [ticket], viewer=user, now=now)[0]
    staff = _is_staff(user)
    figures = _sla_figures(session, ticket, settings=settings, cal=service.calendar_from_settings(settings), now=now)
    links = _link_items(session, public.links, user)
    comments = service.list_comments(session, ticket, viewer=user)
    time_entries = service.list_time(session, ticket, viewer=user) if staff else []
    events = service.list_events(session, ticket, viewer=user)
    verdicts = service.verdicts_for_ticket(session, ticket)
    moves = _moves(ticket, user)
    people = _usernames(session, {ticket.assignee_id, ticket.requester_id, *public.watcher_ids})
    labels = {(item["kind"], item["id"]): item["label"] for item in links}
    return render(
        request, "ticket.html", status_code=status_code, ticket=ticket, public=public, sla=figures, links=links,
        comments=comments, time_entries=time_entries, total_minutes=sum(e.minutes for e in time_entries),
        attachments=service.list_attachments(session, ticket, viewer=user),
        events=[{"event": e, "text": _describe(e.details)} for e in events],
        verify=service.verify_chain(session, ticket) if staff else None,
        verdicts=verdicts, labels=labels, moves=moves, people=people, staff=staff,
        org=_org_names(session).get(ticket.requester_org_id or 0),
        assignees=_assignees(session) if moves["assign"] else [], verdict_labels=VERDICT_LABELS,
        closable_links=[item for item in links if item["kind"] in VERDICTS_BY_KIND],
        flash=DONE.get(done), error=error, error_at=error_at, form=form or {}, fmt=_clock(settings), now=now,
        tz=settings.sla_timezone, max_attachment_kib=settings.attachment_max_bytes // 1024)


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(ticket_id: int, request: Request, session: PageSession, user: PageUser, done: str = "") -> HTMLResponse:
    return _ticket_page(request, session, user, ticket_id, done=done)


def _refused(request: Request, session: Session, user: User, ticket_id: int, exc: Exception, *, at: str,
             form: dict[str, Any]) -> HTMLResponse:
    message, status = _error_text(exc)
    return _ticket_page(request, session, user, ticket_id, error=message, error_at=at, form=form,
                        status_code=status)


@router.post("/tickets/{ticket_id}/comments")
def add_comment(ticket_id: int, request: Request, session: PageSession, user: PageUser,
                body: Annotated[str, Form()] = "", internal: Annotated[bool, Form()] = False) -> Response:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    try:
        with _all_or_nothing(session):
            service.add_comment(session, ticket, CommentCreate(body=body.strip(), internal=internal), author=user,
                                settings=_settings(request))
    except (RefurbError, ModelError) as exc:
        return _refused(request, session, user, ticket_id, exc, at="comments",
                        form={"comment": body, "internal": internal})
    return _back(ticket_id, "comment", "#comments")


@router.post("/tickets/{ticket_id}/time")
def add_time(ticket_id: int, request: Request, session: PageSession, user: PageUser,
             minutes: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    ticket = service.get_ticket(session, ticket_id, viewer=user)
    try:
        with _all_or_nothing(session):
            service.add_time(session, ticket, TimeEntryCreate(minutes=minutes or 0, note=note), actor=user)
    except (RefurbError, ModelError) as exc:
        return _refused(request, session, user, ticket_id, exc, at="time", form={"minutes": minutes, "note": note})
    return _back(ticket_id, "time", "#time")


@router.post("/tickets/{ticket_id}/transitions")
def move(ticket_id: int, request: Request, session: PageSession, user: PageUser, to: Annotated[str, Form()],
         assignee_id: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    try:
        with _all_or_nothing(session):
            data = TransitionRequest(to=to, assignee_id=int(assignee_id) if assignee_id.isdigit() else None,
                                     note=note.strip() or None)
            service.transition(session, ticket, data, actor=user, settings=_settings(request))
    except (RefurbError, ModelError) as exc:
        return _refused(request, session, user, ticket_id, exc, at="moves", form={"note": note})
    return _back(ticket_id, "moved")


@router.post("/tickets/{ticket_id}/attachments")
def add_attachment(ticket_id: int, request: Request, session: PageSession, user: PageUser,
                   file: Annotated[UploadFile | str | None, File()] = None,
                   internal: Annotated[bool, Form()] = False) -> Response:
    settings = _settings(request)
    upload = file if isinstance(file, StarletteUpload) else None  # no file chosen: an empty string or nothing
    data = upload.file.read(settings.attachment_max_bytes + 1) if upload else b""  # one byte more: "too large"
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    try:
        with _all_or_nothing(session):
            service.add_attachment(session, ticket, filename=upload.filename or "" if upload else "",
                                   content_type=upload.content_type if upload else None, data=data,
                                   internal=internal, actor=user, settings=settings)
    except RefurbError as exc:
        return _refused(request, session, user, ticket_id, exc, at="attachments", form={})
    return _back(ticket_id, "attachment", "#attachments")


def _verdicts(targets: list[str], verdicts: list[str], sub_parts: list[str], notes: list[str]
              ) -> list[VerdictCreate]:
    """One verdict per close-form row that names one ('none' rows are skipped)."""
    if not len(targets) == len(verdicts) == len(sub_parts) == len(notes):
        raise ValidationError("verdicts: the close form was sent incomplete; reload the page")
    out = []
    for target, verdict, sub_part, note in zip(targets, verdicts, sub_parts, notes, strict=True):
        if verdict in ("", "none"):
            continue
        kind, _, raw_id = target.partition(":")
        if kind not in VERDICTS_BY_KIND or not raw_id.isdigit():
            raise ValidationError(f"verdicts: unknown target {target!r}")
        out.append(VerdictCreate.model_validate({
            f"{kind}_id": int(raw_id), "verdict": verdict, "note": note.strip(),
            "sub_part_id": int(sub_part) if sub_part.isdigit() and verdict == VerdictKind.REQUIRE_REPLACEMENT
            else None}))
    return out


@router.post("/tickets/{ticket_id}/close")
def close(ticket_id: int, request: Request, session: PageSession, user: PageUser,
          resolution: Annotated[str, Form()] = "", target: Annotated[list[str], Form()] = [],  # noqa: B006
          verdict: Annotated[list[str], Form()] = [], sub_part: Annotated[list[str], Form()] = [],  # noqa: B006
          note: Annotated[list[str], Form()] = []) -> Response:  # noqa: B006 - FastAPI form defaults
    ticket = service.get_ticket(session, ticket_id, viewer=user, for_update=True)
    form = {"resolution": resolution,
            "rows": {t: {"verdict": v, "sub_part": s, "note": n}
                     for t, v, s, n in zip(target, verdict, sub_part, note, strict=False)}}
    try:
        with _all_or_nothing(session):
            data = CloseRequest(resolution=resolution.strip(), verdicts=_verdicts(target, verdict, sub_part, note))
            service.close_ticket(session, ticket, data, actor=user, settings=_settings(request))
    except (RefurbError, ModelError) as exc:
        return _refused(request, session, user, ticket_id, exc, at="close", form=form)
    return _back(ticket_id, "closed")
