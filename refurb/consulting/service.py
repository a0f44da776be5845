"""Consulting business rules: the ticket state machine, who sees and works what, SLAs in business time, closing
verdicts that become part events, attachments and automatic tickets. Functions take the session first, the rest
keyword-only, and never commit. Every function that records something takes ``now`` (default: the clock), so tests
drive time instead of sleeping."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, false, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from refurb.auth import MANAGING_ROLES, STAFF_ROLES, Role, User, customer_org_scope
from refurb.config import Settings, get_settings
from refurb.consulting import sla
from refurb.consulting.models import (
    CloseRequest,
    CommentCreate,
    LinkIds,
    LinkKind,
    SlaPolicy,
    SlaPolicyPublic,
    SlaPolicySet,
    Ticket,
    TicketAttachment,
    TicketCategory,
    TicketComment,
    TicketCreate,
    TicketEvent,
    TicketEventKind,
    TicketLink,
    TicketLinkPublic,
    TicketPriority,
    TicketPublic,
    TicketSlaPublic,
    TicketState,
    TicketVerdict,
    TicketWatcher,
    TimeEntry,
    TimeEntryCreate,
    TransitionRequest,
    VerdictCreate,
    VerdictKind,
    VerdictTarget,
)
from refurb.db import count_rows, utcnow
from refurb.errors import (
    ConflictError,
    ForbiddenError,
    IllegalTransitionError,
    NotFoundError,
    RefurbError,
    ValidationError,
)
from refurb.parts import chain, lifecycle
from refurb.parts import service as parts_service
from refurb.parts.models import Disposition, EventCreate, EventType, Part, PartEvent

log = logging.getLogger(__name__)

S = TicketState
SYSTEM_ACTOR = "system"

# --- the state machine -----------------------------------------------------------------------------------------

PAUSED_STATES = frozenset({S.WAITING_CUSTOMER, S.WAITING_PARTS, S.WAITING_VENDOR})
"""The SLA clock pauses in these states (ITIL: waiting on someone outside the center)."""
STOPPED_STATES = frozenset({S.RESOLVED, S.CLOSED})
"""The clock has stopped; only a reopen (within Settings.ticket_reopen_days) leaves these."""
OPEN_STATES = frozenset(S) - STOPPED_STATES
REOPEN_TARGETS = frozenset({S.TRIAGED, S.ASSIGNED, S.IN_PROGRESS})
_WAITING_NEXT = {S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED} | PAUSED_STATES

TRANSITIONS: dict[TicketState, frozenset[TicketState]] = {
    S.NEW: frozenset({S.TRIAGED, S.ASSIGNED, S.WAITING_CUSTOMER, S.CLOSED}),
    S.TRIAGED: frozenset({S.ASSIGNED, S.WAITING_CUSTOMER, S.CLOSED}),
    S.ASSIGNED: frozenset({S.ASSIGNED, S.IN_PROGRESS, S.RESOLVED, S.CLOSED} | PAUSED_STATES),
    S.IN_PROGRESS: frozenset({S.ASSIGNED, S.RESOLVED, S.CLOSED} | PAUSED_STATES),
    S.WAITING_CUSTOMER: frozenset(_WAITING_NEXT | {S.TRIAGED} - {S.WAITING_CUSTOMER}),
    S.WAITING_PARTS: frozenset(_WAITING_NEXT - {S.WAITING_PARTS}),
    S.WAITING_VENDOR: frozenset(_WAITING_NEXT - {S.WAITING_VENDOR}),
    S.RESOLVED: frozenset({S.CLOSED} | REOPEN_TARGETS),
    S.CLOSED: REOPEN_TARGETS,
}
"""Every legal step (closing goes through :func:`close_ticket`, which needs a resolution)."""

ASSIGNABLE_ROLES = frozenset({Role.CONSULTANT, Role.MANAGER, Role.ADMIN})

# --- SLA policy defaults (business hours on the center calendar; docs/api.md, Consulting tickets) ---------------

DEFAULT_POLICIES: dict[TicketPriority, tuple[float, float]] = {
    TicketPriority.URGENT: (1.0, 9.0),  # answer within the hour, solve within one business day
    TicketPriority.HIGH: (4.0, 18.0),  # answer the same half-day, solve within two business days
    TicketPriority.NORMAL: (9.0, 45.0),  # answer by the next business day, solve within a business week
    TicketPriority.LOW: (18.0, 90.0),  # answer within two business days, solve within two business weeks
}
"""(first response, resolution) targets in business hours per priority, used when no policy row matches."""

_SPECIALTY_ALIASES: dict[str, TicketCategory] = {
    "test": TicketCategory.TESTING, "certification": TicketCategory.TESTING, "reman": TicketCategory.REMANUFACTURING,
    "data": TicketCategory.DATA_AI, "ai": TicketCategory.DATA_AI,
}

# Words in failed checks that point at part wear (-> remanufacturing) or at the data itself (-> data/AI).
_WEAR_WORDS = ("vibration", "bearing", "backlash", "noise", "wear", "gear", "friction", "brake")
_DATA_WORDS = ("data", "gap", "missing", "sensor", "drift", "anomaly", "timestamp")

SAFE_CONTENT_TYPES = frozenset({
    "application/pdf", "application/json", "application/zip", "application/octet-stream", "image/png",
    "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv",
})


class PayloadTooLargeError(RefurbError):
    status_code = 413


def settings_or_default(settings: Settings | None) -> Settings:
    """Return the given settings, or the process-wide ones."""
    return settings if settings is not None else get_settings()


def calendar_from_settings(settings: Settings) -> sla.BusinessCalendar:
    """Build the center's business calendar from the REFURB_SLA_* settings."""
    try:
        return sla.BusinessCalendar(
            tz=settings.sla_timezone, workdays=frozenset(settings.sla_workdays), day_start=settings.sla_day_start,
            day_end=settings.sla_day_end, country=settings.sla_holiday_country or None,
            extra_holidays=frozenset(settings.sla_extra_holidays),
            extra_workdays=frozenset(settings.sla_extra_workdays))
    except ValueError as exc:
        raise ValidationError(f"the SLA calendar settings are invalid: {exc}") from exc


# --- who sees and works what -----------------------------------------------------------------------------------


def specialty_categories(specialties: Iterable[str]) -> set[TicketCategory]:
    """Map a consultant's specialties ("testing/certification", "data/AI", ...) to ticket categories."""
    out: set[TicketCategory] = set()
    values = {c.value for c in TicketCategory}
    for raw in specialties:
        key = str(raw).strip().lower().replace("-", "_")
        if key in values:
            out.add(TicketCategory(key))
            continue
        first = re.split(r"[/\s,_]+", key)[0] if key else ""
        if first in values:
            out.add(TicketCategory(first))
        elif first in _SPECIALTY_ALIASES:
            out.add(_SPECIALTY_ALIASES[first])
    return out


def is_manager(user: User) -> bool:
    return user.role in MANAGING_ROLES


def _visible_clause(viewer: User | None) -> Any:
    """SQL condition for the tickets a user may read (None: all of them)."""
    if viewer is None or is_manager(viewer):
        return None
    scope = customer_org_scope(viewer)
    if scope is not None:
        return Ticket.requester_org_id == scope
    watched = select(TicketWatcher.ticket_id).where(TicketWatcher.user_id == viewer.id)
    conditions: list[Any] = [Ticket.assignee_id == viewer.id, Ticket.requester_id == viewer.id,
                             col(Ticket.id).in_(watched)]
    if viewer.role == Role.CONSULTANT:
        categories = specialty_categories(viewer.specialties or [])
        if categories:
            conditions.append(col(Ticket.category).in_(sorted(categories)))
    return or_(*conditions)


def get_ticket(session: Session, ticket_id: int, *, viewer: User | None, for_update: bool = False) -> Ticket:
    """Return a ticket the viewer may read: 404 for other organisations' tickets, 403 for staff outside it."""
    query = select(Ticket).where(Ticket.id == ticket_id)
    clause = _visible_clause(viewer)
    if clause is not None:
        query = query.where(clause)
    if for_update:
        query = query.with_for_update()
    ticket = session.exec(query).first()
    if ticket is None:
        if viewer is not None and viewer.role != Role.CUSTOMER and session.get(Ticket, ticket_id) is not None:
            raise ForbiddenError(f"ticket {ticket_id} is not assigned to you, not in your specialty queue and not "
                                 "watched by you")
        raise NotFoundError(f"ticket {ticket_id} not found")
    return ticket


def _require_staff(user: User, what: str) -> None:
    if user.role not in STAFF_ROLES:
        raise ForbiddenError(f"customer accounts may not {what}")


def _require_worker(ticket: Ticket, user: User, what: str) -> None:
    if not (is_manager(user) or (ticket.assignee_id is not None and ticket.assignee_id == user.id)):
        raise ForbiddenError(f"only the assignee or a manager may {what}")


def _customer_may_reference(session: Session, viewer: User, kind: LinkKind, obj: Any) -> bool:
    """A customer may name its own organisation's parts and robots, and ones that belong to no organisation."""
    if kind not in (LinkKind.PART, LinkKind.ROBOT):
        return True
    try:
        if kind == LinkKind.PART:
            parts_service.get_part(session, obj.id, viewer=viewer)
        else:
            parts_service.get_robot(session, obj.id, viewer=viewer)
        return True
    except NotFoundError:
        pass
    if obj.owner_org_id is not None:
        return False
    robot_id = getattr(obj, "installed_robot_id", None)
    return robot_id is None or parts_service.get_robot(session, robot_id).owner_org_id is None


# --- the hash-chained event log --------------------------------------------------------------------------------


def _hashed_details(ev: TicketEvent) -> dict[str, Any]:
    return {"details": ev.details, "from_state": ev.from_state and str(ev.from_state),
            "to_state": ev.to_state and str(ev.to_state), "level": ev.level, "internal": ev.internal}


def _chain_view(ev: TicketEvent) -> SimpleNamespace:
    """The event as the parts chain helper sees it: the ticket fills the subject slot, station is always null."""
    return SimpleNamespace(part_id=ev.ticket_id, seq=ev.seq, type=ev.kind, actor=ev.actor, station=None,
                           occurred_at=ev.at, details=_hashed_details(ev), prev_hash=ev.prev_hash, hash=ev.hash)


def _append_event(session: Session, ticket: Ticket, *, kind: TicketEventKind, actor: User | None, at: datetime,
                  from_state: TicketState | None = None, to_state: TicketState | None = None,
                  level: int | None = None, internal: bool = False, details: dict[str, Any] | None = None
                  ) -> TicketEvent:
    ticket_id = ticket.id
    assert ticket_id is not None
    seq = ticket.event_count + 1
    ev = TicketEvent(ticket_id=ticket_id, seq=seq, kind=kind, actor_id=actor.id if actor else None,
                     actor=actor.username if actor else SYSTEM_ACTOR, at=at, from_state=from_state,
                     to_state=to_state, level=level, internal=internal, details=details or {},
                     prev_hash=ticket.chain_head or chain.GENESIS, hash="")
    view = _chain_view(ev)
    ev.hash = chain.event_hash(chain.event_content(
        part_id=view.part_id, seq=seq, type_=kind, actor=ev.actor, station=None, occurred_at=at,
        details=view.details, prev_hash=ev.prev_hash))
    ticket.event_count = seq
    ticket.chain_head = ev.hash
    ticket.updated_at = at
    session.add(ev)
    session.add(ticket)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError(f"ticket {ticket_id} changed while saving ({kind}); try again") from exc
    return ev


def list_events(session: Session, ticket: Ticket, *, viewer: User | None = None) -> list[TicketEvent]:
    """Return a ticket's events in order; customers see neither internal events nor transition notes."""
    events = list(session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                               .order_by(col(TicketEvent.seq))))
    if viewer is None or viewer.role != Role.CUSTOMER:
        return events
    out = []
    for ev in events:
        if ev.internal:
            continue
        if "note" in ev.details:
            ev = TicketEvent.model_validate(ev.model_dump() | {"details": {k: v for k, v in ev.details.items()
                                                                          if k != "note"}})
        out.append(ev)
    return out


def verify_chain(session: Session, ticket: Ticket) -> chain.ChainReport:
    """Re-hash a ticket's events and compare with the head stored on the ticket."""
    return chain.verify([_chain_view(ev) for ev in list_events(session, ticket)],
                        expected_count=ticket.event_count, expected_head=ticket.chain_head)


def chain_report_dict(report: chain.ChainReport) -> dict[str, Any]:
    return asdict(report)


# --- SLA policies and evaluation -------------------------------------------------------------------------------


def effective_policy(session: Session, *, priority: TicketPriority, category: TicketCategory) -> SlaPolicyPublic:
    """The policy for a priority and category: its own row, else the priority's any-category row, else defaults."""
    rows = list(session.exec(select(SlaPolicy).where(SlaPolicy.priority == priority)))
    for wanted, source in ((category, "policy"), (None, "policy (any category)")):
        for row in rows:
            if row.category == wanted:
                return SlaPolicyPublic.model_validate(row, update={"source": source})
    response_h, resolution_h = DEFAULT_POLICIES[TicketPriority(priority)]
    return SlaPolicyPublic(id=None, priority=priority, category=None, response_target_h=response_h,
                           resolution_target_h=resolution_h, source="default")


def list_policies(session: Session) -> list[SlaPolicyPublic]:
    """Configured policies, plus the built-in default of every priority without an any-category row."""
    rows = list(session.exec(select(SlaPolicy).order_by(col(SlaPolicy.priority), col(SlaPolicy.id))))
    out = [SlaPolicyPublic.model_validate(r, update={"source": "policy"}) for r in rows]
    covered = {r.priority for r in rows if r.category is None}
    for priority, (response_h, resolution_h) in DEFAULT_POLICIES.items():
        if priority not in covered:
            out.append(SlaPolicyPublic(id=None, priority=priority, category=None, response_target_h=response_h,
                                       resolution_target_h=resolution_h, source="default"))
    return out


def set_policy(session: Session, data: SlaPolicySet, *, now: datetime | None = None) -> SlaPolicy:
    """Create or replace the policy of one (priority, category); applies to tickets opened from now on."""
    row = session.exec(select(SlaPolicy).where(SlaPolicy.priority == data.priority,
                                               SlaPolicy.category == data.category if data.category is not None
                                               else col(SlaPolicy.category).is_(None))).first()
    if row is None:
        row = SlaPolicy(priority=data.priority, category=data.category, response_target_h=data.response_target_h,
                        resolution_target_h=data.resolution_target_h)
    row.response_target_h = data.response_target_h
    row.resolution_target_h = data.resolution_target_h
    row.updated_at = now or utcnow()
    session.add(row)
    session.flush()
    return row


def pauses_of(events: Sequence[TicketEvent]) -> list[sla.Interval]:
    """Turn state changes into clock pauses: waiting_* states, and resolved/closed periods a reopen ended."""
    pauses: list[sla.Interval] = []
    start: datetime | None = None
    for ev in events:
        if ev.to_state is None:
            continue
        paused = ev.to_state in PAUSED_STATES or ev.to_state in STOPPED_STATES
        if paused and start is None:
            start = ev.at
        elif not paused and start is not None:
            pauses.append(sla.Interval(start, max(ev.at, start)))
            start = None
    if start is not None:
        pauses.append(sla.Interval(start))
    return pauses


def _evaluate(session: Session, ticket: Ticket, *, now: datetime, settings: Settings,
              cal: sla.BusinessCalendar | None = None) -> tuple[sla.SlaStatus, list[sla.Interval]]:
    events = list(session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                         col(TicketEvent.to_state).is_not(None))
                               .order_by(col(TicketEvent.seq))))
    pauses = pauses_of(events)
    status = sla.evaluate_sla(
        cal or calendar_from_settings(settings), opened_at=ticket.created_at, now=max(now, ticket.created_at),
        first_response_at=ticket.first_response_at, resolved_at=ticket.resolved_at,
        response_target_s=ticket.response_target_h * 3600, resolution_target_s=ticket.resolution_target_h * 3600,
        pauses=pauses, warn_fraction=settings.sla_warn_fraction)
    return status, pauses


def _refresh_sla(session: Session, ticket: Ticket, *, now: datetime, settings: Settings,
                 cal: sla.BusinessCalendar | None = None) -> sla.SlaStatus:
    """Store the ticket's SLA figures at `now` (what lists filter and sort on)."""
    status, _ = _evaluate(session, ticket, now=now, settings=settings, cal=cal)
    ticket.response_due_at = status.response_due
    ticket.resolution_due_at = status.resolution_due
    ticket.sla_due_at = (None if ticket.state in STOPPED_STATES
                         else status.resolution_due if status.responded else status.response_due)
    ticket.response_breached = status.response_breached
    ticket.resolution_breached = status.resolution_breached
    ticket.sla_level = status.level
    ticket.sla_paused = status.paused
    session.add(ticket)
    return status


def _breached_clause(now: datetime) -> Any:
    """SQL twin of :func:`breached_now`: stored breach flags, or a running clock whose due time has passed."""
    running = col(Ticket.state).not_in(sorted(PAUSED_STATES | STOPPED_STATES))
    late = or_(and_(col(Ticket.first_response_at).is_(None), col(Ticket.response_due_at) < now),
               col(Ticket.resolution_due_at) < now)
    return or_(col(Ticket.response_breached), col(Ticket.resolution_breached), and_(running, late))


def breached_now(ticket: Ticket, now: datetime) -> bool:
    """Whether a ticket has breached an SLA target at `now`, from its stored due times (no query)."""
    if ticket.response_breached or ticket.resolution_breached:
        return True
    if ticket.state in PAUSED_STATES or ticket.state in STOPPED_STATES:
        return False
    response_late = ticket.first_response_at is None and ticket.response_due_at is not None \
        and ticket.response_due_at < now
    return response_late or (ticket.resolution_due_at is not None and ticket.resolution_due_at < now)


def sla_view(session: Session, ticket: Ticket, *, settings: Settings | None = None, now: datetime | None = None
             ) -> TicketSlaPublic:
    """Evaluate a ticket's SLA live: due times, business time used and remaining, breaches, pauses."""
    settings = settings_or_default(settings)
    now = now or utcnow()
    cal = calendar_from_settings(settings)
    status, pauses = _evaluate(session, ticket, now=now, settings=settings, cal=cal)
    row = session.get(SlaPolicy, ticket.sla_policy_id) if ticket.sla_policy_id else None
    policy = SlaPolicyPublic(id=ticket.sla_policy_id, priority=ticket.priority, category=row.category if row else None,
                             response_target_h=ticket.response_target_h,
                             resolution_target_h=ticket.resolution_target_h,
                             source="policy" if row else "default")  # targets as copied when the ticket opened
    return TicketSlaPublic(
        ticket_id=ticket.id or 0, state=ticket.state, policy=policy,
        calendar={"tz": cal.tz, "workdays": sorted(cal.workdays), "day_start": cal.day_start.isoformat(),
                  "day_end": cal.day_end.isoformat(), "holiday_country": cal.country},
        opened_at=ticket.created_at, first_response_at=ticket.first_response_at, resolved_at=ticket.resolved_at,
        response_due_at=status.response_due, resolution_due_at=status.resolution_due,
        response_used_h=status.response_used_s / 3600, resolution_used_h=status.resolution_used_s / 3600,
        response_remaining_h=status.response_remaining_s / 3600,
        resolution_remaining_h=status.resolution_remaining_s / 3600,
        response_breached=status.response_breached, resolution_breached=status.resolution_breached,
        fraction_used=status.fraction_used, level=status.level, paused=status.paused,
        escalation_level=sla.escalation_level(status.fraction_used, settings.sla_escalation_thresholds),
        pauses=[{"start": p.start, "end": p.end} for p in pauses])


# --- links -----------------------------------------------------------------------------------------------------


def _lookup(session: Session, kind: LinkKind, target_id: int) -> Any:
    """The part, robot or part type a link names (None if missing); test runs and alarms are taken on trust."""
    getter: Any = {LinkKind.PART: parts_service.get_part, LinkKind.ROBOT: parts_service.get_robot,
                   LinkKind.PART_TYPE: parts_service.get_part_type}.get(kind)
    if getter is None:
        return SimpleNamespace(id=target_id)
    try:
        return getter(session, target_id)
    except NotFoundError:
        return None


def _resolve_links(session: Session, links: LinkIds, *, viewer: User | None) -> list[tuple[LinkKind, int, Any]]:
    """Check every linked id (parts, part types, robots exist; customers name only their own); keep order."""
    out: list[tuple[LinkKind, int, Any]] = []
    seen: set[tuple[LinkKind, int]] = set()
    customer = viewer is not None and viewer.role == Role.CUSTOMER
    for kind, ids in links.by_kind().items():
        field = f"{kind.value}_ids"
        for target_id in ids:
            if (kind, target_id) in seen:
                continue
            seen.add((kind, target_id))
            if target_id <= 0:
                raise ValidationError(f"{field}: {target_id} is not a valid id")
            obj = _lookup(session, kind, target_id)
            if obj is None:
                raise ValidationError(f"{field}: {kind.value.replace('_', ' ')} {target_id} not found")
            if customer and viewer is not None and not _customer_may_reference(session, viewer, kind, obj):
                raise ValidationError(f"{field}: {kind.value.replace('_', ' ')} {target_id} not found")
            out.append((kind, target_id, obj))
    return out


def _owner_org(session: Session, resolved: Sequence[tuple[LinkKind, int, Any]]) -> int | None:
    """The one organisation owning the linked robots and parts, if there is exactly one."""
    orgs: set[int] = set()
    for kind, _, obj in resolved:
        if kind == LinkKind.ROBOT and obj.owner_org_id is not None:
            orgs.add(obj.owner_org_id)
        elif kind == LinkKind.PART:
            if obj.owner_org_id is not None:
                orgs.add(obj.owner_org_id)
            elif obj.installed_robot_id is not None:
                owner = parts_service.get_robot(session, obj.installed_robot_id).owner_org_id
                if owner is not None:
                    orgs.add(owner)
    return orgs.pop() if len(orgs) == 1 else None


def _store_links(session: Session, ticket: Ticket, resolved: Sequence[tuple[LinkKind, int, Any]]
                 ) -> dict[str, list[int]]:
    existing = {(link.kind, link.target_id) for link in ticket_links(session, ticket)}
    added: dict[str, list[int]] = {}
    for kind, target_id, _ in resolved:
        if (kind, target_id) in existing:
            continue
        assert ticket.id is not None
        session.add(TicketLink(ticket_id=ticket.id, kind=kind, target_id=target_id))
        added.setdefault(kind.value, []).append(target_id)
    session.flush()
    return added


def ticket_links(session: Session, ticket: Ticket) -> list[TicketLink]:
    return list(session.exec(select(TicketLink).where(TicketLink.ticket_id == ticket.id).order_by(col(TicketLink.id))))


def add_links(session: Session, ticket: Ticket, data: LinkIds, *, actor: User, now: datetime | None = None
              ) -> list[TicketLink]:
    """Link more parts, part types, robots, test runs or alarms to an open ticket."""
    now = now or utcnow()
    if ticket.state == S.CLOSED:
        raise ConflictError(f"ticket {ticket.id} is closed; reopen it to link more items")
    added = _store_links(session, ticket, _resolve_links(session, data, viewer=actor))
    if added:
        _append_event(session, ticket, kind=TicketEventKind.LINKED, actor=actor, at=now, details=added)
    return ticket_links(session, ticket)


def tickets_linked_to(session: Session, *, kind: LinkKind, target_id: int, viewer: User | None = None
                      ) -> list[Ticket]:
    """Tickets about one part, part type, robot, test run or alarm (for other domains' pages)."""
    query = select(Ticket).where(col(Ticket.id).in_(
        select(TicketLink.ticket_id).where(TicketLink.kind == kind, TicketLink.target_id == target_id)))
    clause = _visible_clause(viewer)
    if clause is not None:
        query = query.where(clause)
    return list(session.exec(query.order_by(col(Ticket.id))))


# --- opening tickets -------------------------------------------------------------------------------------------


def _open_ticket(session: Session, *, title: str, description: str, category: TicketCategory,
                 priority: TicketPriority, requester: User | None, org_id: int | None,
                 resolved: Sequence[tuple[LinkKind, int, Any]], source: str, settings: Settings, now: datetime,
                 suggested_category: TicketCategory | None = None) -> Ticket:
    policy = effective_policy(session, priority=priority, category=category)
    ticket = Ticket(title=title, description=description, category=category, priority=priority,
                    requester_org_id=org_id, requester_id=requester.id if requester else None, created_at=now,
                    updated_at=now, source=source, suggested_category=suggested_category, sla_policy_id=policy.id,
                    response_target_h=policy.response_target_h, resolution_target_h=policy.resolution_target_h)
    session.add(ticket)
    session.flush()
    links = _store_links(session, ticket, resolved)
    _append_event(session, ticket, kind=TicketEventKind.CREATED, actor=requester, at=now, to_state=S.NEW,
                  details={"source": source, "links": links, "policy": policy.source}
                  | ({"suggested_category": suggested_category.value} if suggested_category else {}))
    _refresh_sla(session, ticket, now=now, settings=settings)
    return ticket


def create_ticket(session: Session, data: TicketCreate, *, requester: User, settings: Settings | None = None,
                  now: datetime | None = None) -> Ticket:
    """Open a ticket: a customer's belongs to its organisation; staff tickets to the linked items' owner, if one."""
    resolved = _resolve_links(session, data, viewer=requester)
    scope = customer_org_scope(requester)
    org_id = scope if scope is not None else _owner_org(session, resolved)
    return _open_ticket(session, title=data.title, description=data.description, category=data.category,
                        priority=data.priority, requester=requester, org_id=org_id, resolved=resolved, source="api",
                        settings=settings_or_default(settings), now=now or utcnow())


def suggest_category(failed_checks: Sequence[dict[str, Any]]) -> TicketCategory:
    """Suggest a category from failed checks: wear signatures -> remanufacturing, data problems -> data_ai,
    anything else -> testing."""
    words = " ".join(str(v).lower() for check in failed_checks for k, v in check.items()
                     if k in ("check", "name", "key", "kind", "metric", "reason", "type"))
    if any(w in words for w in _WEAR_WORDS):
        return TicketCategory.REMANUFACTURING
    if any(w in words for w in _DATA_WORDS):
        return TicketCategory.DATA_AI
    return TicketCategory.TESTING


def _describe_checks(failed_checks: Sequence[dict[str, Any]]) -> str:
    lines = []
    for check in failed_checks[:50]:
        lines.append("- " + ", ".join(f"{k}={v}" for k, v in check.items())[:300])
    if len(failed_checks) > 50:
        lines.append(f"- ... and {len(failed_checks) - 50} more")
    return "\n".join(lines)


def _auto_ticket(session: Session, *, kind: LinkKind, source_id: int, robot_id: int, part_ids: Sequence[int],
                 title: str, description: str, category: TicketCategory, priority: TicketPriority, source: str,
                 settings: Settings, now: datetime) -> Ticket:
    for ticket in tickets_linked_to(session, kind=kind, target_id=source_id):
        if ticket.source == source:
            return ticket  # the telemetry side retried: one ticket per run or alarm
    links = LinkIds(robot_ids=[robot_id], part_ids=list(part_ids))
    if kind == LinkKind.TEST_RUN:
        links.test_run_ids = [source_id]
    else:
        links.alarm_ids = [source_id]
    resolved = _resolve_links(session, links, viewer=None)
    robot = resolved[next(i for i, r in enumerate(resolved) if r[0] == LinkKind.ROBOT)][2]
    return _open_ticket(session, title=title, description=description[:10_000], category=category,
                        priority=priority, requester=None, org_id=robot.owner_org_id, resolved=resolved,
                        source=source, settings=settings, now=now, suggested_category=category)


def open_ticket_for_failed_run(session: Session, *, robot_id: int, test_run_id: int,
                               failed_checks: list[dict[str, Any]], part_ids: list[int], critical: bool = False,
                               certification: bool = True, settings: Settings | None = None,
                               now: datetime | None = None) -> Ticket | None:
    """Open (once per run) a ticket pre-linked to the robot, the run and the failing parts, when the rule says so.

    The rule: Settings.auto_ticket_on_failed_certification (default on) for certification runs,
    Settings.auto_ticket_on_failed_run (default off) for other runs. Critical failures are urgent, others high.
    Returns None when the rule does not apply.
    """
    settings = settings_or_default(settings)
    wanted = settings.auto_ticket_on_failed_certification if certification else settings.auto_ticket_on_failed_run
    if not wanted:
        return None
    robot = parts_service.get_robot(session, robot_id)
    what = "certification run" if certification else "test run"
    category = suggest_category(failed_checks)
    description = (f"Automatic ticket: {what} {test_run_id} on robot {robot.serial} failed "
                   f"{len(failed_checks)} check(s).\n{_describe_checks(failed_checks)}")
    return _auto_ticket(session, kind=LinkKind.TEST_RUN, source_id=test_run_id, robot_id=robot_id,
                        part_ids=part_ids, title=f"Failed {what} {test_run_id} on robot {robot.serial}"[:200],
                        description=description, category=category,
                        priority=TicketPriority.URGENT if critical else TicketPriority.HIGH,
                        source="failed_test_run", settings=settings, now=now or utcnow())


def open_ticket_for_alarm(session: Session, *, robot_id: int, alarm_id: int, key: str, severity: str,
                          part_ids: Sequence[int] = (), message: str = "", settings: Settings | None = None,
                          now: datetime | None = None) -> Ticket | None:
    """Open (once per alarm) an urgent ticket for a critical alarm when Settings.auto_ticket_on_critical_alarm."""
    settings = settings_or_default(settings)
    if not settings.auto_ticket_on_critical_alarm or severity.lower() != "critical":
        return None
    robot = parts_service.get_robot(session, robot_id)
    return _auto_ticket(session, kind=LinkKind.ALARM, source_id=alarm_id, robot_id=robot_id, part_ids=part_ids,
                        title=f"Critical alarm {key} on robot {robot.serial}"[:200],
                        description=f"Automatic ticket: critical alarm {alarm_id} ({key}) on robot {robot.serial}."
                                    + (f"\n{message}" if message else ""),
                        category=suggest_category([{"key": key}]), priority=TicketPriority.URGENT,
                        source="critical_alarm", settings=settings, now=now or utcnow())


# --- listing ---------------------------------------------------------------------------------------------------


def _parse_states(state: str) -> list[TicketState]:
    if state == "open":
        return sorted(OPEN_STATES)
    out = []
    for raw in state.split(","):
        try:
            out.append(TicketState(raw.strip()))
        except ValueError:
            raise ValidationError(f"state: unknown state {raw.strip()!r}; use 'open' or one or more of "
                                  + ", ".join(s.value for s in TicketState)) from None
    return out


def list_tickets(session: Session, *, viewer: User | None, state: str | None = None, assignee: str | None = None,
                 category: TicketCategory | None = None, priority: TicketPriority | None = None,
                 breached: bool | None = None, org_id: int | None = None, part_id: int | None = None,
                 robot_id: int | None = None, sort: str = "due", offset: int = 0, limit: int = 100,
                 now: datetime | None = None) -> tuple[list[Ticket], int]:
    """Return a page of the tickets the viewer may read, filtered, and the total count."""
    now = now or utcnow()
    query = select(Ticket)
    clause = _visible_clause(viewer)
    if clause is not None:
        query = query.where(clause)
    if state:
        query = query.where(col(Ticket.state).in_(_parse_states(state)))
    if assignee:
        if assignee == "me":
            query = query.where(Ticket.assignee_id == (viewer.id if viewer else None))
        elif assignee == "none":
            query = query.where(col(Ticket.assignee_id).is_(None))
        elif assignee.isdigit():
            query = query.where(Ticket.assignee_id == int(assignee))
        else:
            raise ValidationError(f"assignee: expected 'me', 'none' or a user id, got {assignee!r}")
    if category:
        query = query.where(Ticket.category == category)
    if priority:
        query = query.where(Ticket.priority == priority)
    if breached is not None:
        query = query.where(_breached_clause(now) if breached else ~_breached_clause(now))
    if org_id is not None:
        query = query.where(Ticket.requester_org_id == org_id)
    for kind, target in ((LinkKind.PART, part_id), (LinkKind.ROBOT, robot_id)):
        if target is not None:
            query = query.where(col(Ticket.id).in_(select(TicketLink.ticket_id).where(
                TicketLink.kind == kind, TicketLink.target_id == target)))
    if sort == "due":
        ordered = query.order_by(col(Ticket.sla_due_at).is_(None), col(Ticket.sla_due_at), col(Ticket.id))
    elif sort == "created":
        ordered = query.order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
    else:
        raise ValidationError(f"sort: expected 'due' or 'created', got {sort!r}")
    rows = list(session.exec(ordered.offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def queue(session: Session, *, viewer: User, offset: int = 0, limit: int = 100) -> tuple[list[Ticket], int]:
    """A consultant's work queue: open tickets assigned to them, and unassigned ones in their specialties
    (managers: every unassigned one), soonest due first."""
    if viewer.role not in ASSIGNABLE_ROLES:
        raise ForbiddenError(f"role '{viewer.role}' has no ticket queue; it is for consultants and managers")
    unassigned: Any = col(Ticket.assignee_id).is_(None)
    if not is_manager(viewer):
        categories = sorted(specialty_categories(viewer.specialties or []))
        unassigned = and_(unassigned, col(Ticket.category).in_(categories)) if categories else false()
    query = select(Ticket).where(col(Ticket.state).in_(sorted(OPEN_STATES)),
                                 or_(col(Ticket.assignee_id) == viewer.id, unassigned))
    rows = list(session.exec(query.order_by(col(Ticket.sla_due_at).is_(None), col(Ticket.sla_due_at),
                                            col(Ticket.id)).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def to_public(session: Session, tickets: Sequence[Ticket], *, viewer: User | None, now: datetime | None = None
              ) -> list[TicketPublic]:
    """Shape tickets for the API with their links and watchers (customers see only links they may see)."""
    now = now or utcnow()
    ids = [t.id for t in tickets]
    links: dict[int, list[TicketLink]] = {}
    watchers: dict[int, list[int]] = {}
    if ids:
        for link in session.exec(select(TicketLink).where(col(TicketLink.ticket_id).in_(ids))
                                 .order_by(col(TicketLink.id))):
            links.setdefault(link.ticket_id, []).append(link)
        for w in session.exec(select(TicketWatcher).where(col(TicketWatcher.ticket_id).in_(ids))
                              .order_by(col(TicketWatcher.id))):
            watchers.setdefault(w.ticket_id, []).append(w.user_id)
    customer = viewer is not None and viewer.role == Role.CUSTOMER
    out = []
    for t in tickets:
        shown = links.get(t.id or 0, [])
        if customer and viewer is not None:
            shown = [link for link in shown if _customer_may_see_link(session, viewer, link)]
        out.append(TicketPublic.model_validate(t, update={
            "links": [TicketLinkPublic(kind=link.kind, target_id=link.target_id) for link in shown],
            "watcher_ids": watchers.get(t.id or 0, []),
            "due_at": t.sla_due_at,
            "breached": breached_now(t, now),
        }))
    return out


def _customer_may_see_link(session: Session, viewer: User, link: TicketLink) -> bool:
    obj = _lookup(session, link.kind, link.target_id)
    return obj is not None and _customer_may_reference(session, viewer, link.kind, obj)


# --- transitions -----------------------------------------------------------------------------------------------


def allowed_next(ticket: Ticket) -> list[str]:
    """The states a ticket may move to now, in the order of TicketState."""
    return [s.value for s in TicketState if s in TRANSITIONS[TicketState(ticket.state)]]


def _illegal(ticket: Ticket, to: TicketState, reason: str = "", allowed: list[str] | None = None
             ) -> IllegalTransitionError:
    exc = IllegalTransitionError(subject=f"ticket {ticket.id} to '{to.value}'", current=str(ticket.state),
                                 attempted="move", allowed=allowed_next(ticket) if allowed is None else allowed,
                                 reason=reason)
    exc.extra["attempted"] = to.value
    return exc


def _check_reopen_window(ticket: Ticket, to: TicketState, *, now: datetime, settings: Settings) -> None:
    since = ticket.closed_at if ticket.state == S.CLOSED else ticket.resolved_at
    if since is None:
        return
    deadline = since + timedelta(days=settings.ticket_reopen_days)
    if now > deadline:
        rest = [s for s in allowed_next(ticket) if TicketState(s) not in REOPEN_TARGETS]
        raise _illegal(ticket, to, allowed=rest,
                       reason=f"the reopen period of {settings.ticket_reopen_days:g} days ended at "
                              f"{deadline.isoformat(timespec='minutes')}; open a new ticket")


def _assignee(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise ValidationError(f"assignee_id: user {user_id} not found")
    if user.role not in ASSIGNABLE_ROLES:
        raise ValidationError(f"assignee_id: a {user.role} cannot be assigned tickets; choose a consultant or manager")
    return user


def _move(session: Session, ticket: Ticket, to: TicketState, *, actor: User | None, now: datetime,
          settings: Settings, details: dict[str, Any]) -> TicketEvent:
    """Apply one legal step: timestamps, the event (hash-chained), the SLA figures."""
    current = TicketState(ticket.state)
    reopening = current in STOPPED_STATES and to in REOPEN_TARGETS
    if reopening:
        details = details | {"previous_resolution": ticket.resolution_summary}
        ticket.resolved_at = None
        ticket.closed_at = None
        ticket.resolution_summary = None
    if to == S.RESOLVED:
        ticket.resolved_at = now
    ticket.state = to
    ev = _append_event(session, ticket, kind=TicketEventKind.REOPENED if reopening else TicketEventKind.TRANSITION,
                       actor=actor, at=now, from_state=current, to_state=to,
                       details={k: v for k, v in details.items() if v is not None})
    _refresh_sla(session, ticket, now=now, settings=settings)
    return ev


def transition(session: Session, ticket: Ticket, data: TransitionRequest, *, actor: User,
               settings: Settings | None = None, now: datetime | None = None) -> Ticket:
    """Move a ticket along the state machine (409 naming the allowed steps when the step is illegal)."""
    settings = settings_or_default(settings)
    now = now or utcnow()
    current, to = TicketState(ticket.state), TicketState(data.to)
    if to not in TRANSITIONS[current]:
        raise _illegal(ticket, to)
    if to == S.CLOSED:
        raise ValidationError(f"closing needs a resolution: POST /api/v1/tickets/{ticket.id}/close with "
                              "'resolution' and optional 'verdicts'")
    reopening = current in STOPPED_STATES
    if reopening:
        _check_reopen_window(ticket, to, now=now, settings=settings)
    if data.assignee_id is not None and to != S.ASSIGNED:
        raise ValidationError("assignee_id goes only with a move to 'assigned'")

    details: dict[str, Any] = {"note": data.note}
    if actor.role == Role.CUSTOMER:
        if not reopening or to == S.ASSIGNED:
            raise ForbiddenError("customers may only reopen their resolved or closed tickets "
                                 "(to 'in_progress' or 'triaged')")
    elif actor.role == Role.TECHNICIAN:
        raise ForbiddenError("technicians may read and comment on tickets but not move them")
    elif to == S.ASSIGNED:
        assignee = _assignee(session, data.assignee_id if data.assignee_id is not None else actor.id or 0)
        self_service = assignee.id == actor.id or ticket.assignee_id == actor.id  # take it, or hand it over
        if not (is_manager(actor) or self_service):
            raise ForbiddenError("only a manager, or the current assignee handing over, may assign someone else")
        ticket.assignee_id = assignee.id
        details["assignee_id"] = assignee.id
        details["assignee"] = assignee.username
    elif to != S.TRIAGED:
        _require_worker(ticket, actor, f"move ticket {ticket.id} to '{to.value}'")
    if to == S.IN_PROGRESS and ticket.assignee_id is None:
        raise ValidationError(f"ticket {ticket.id} has no assignee: move it to 'assigned' with an assignee_id first")
    if to == S.RESOLVED and data.note:
        ticket.resolution_summary = data.note
    _move(session, ticket, to, actor=actor, now=now, settings=settings, details=details)
    return ticket


# --- comments, time, watchers ----------------------------------------------------------------------------------


def add_comment(session: Session, ticket: Ticket, data: CommentCreate, *, author: User,
                settings: Settings | None = None, now: datetime | None = None) -> TicketComment:
    """Add a comment. The first public comment by center staff is the first response (stops that SLA clock);
    a customer's reply to a ticket waiting on the customer resumes it."""
    settings = settings_or_default(settings)
    now = now or utcnow()
    if ticket.state == S.CLOSED:
        raise ConflictError(f"ticket {ticket.id} is closed; reopen it to comment")
    customer = author.role == Role.CUSTOMER
    if customer and data.internal:
        raise ForbiddenError("customers cannot post internal comments")
    assert ticket.id is not None
    comment = TicketComment(ticket_id=ticket.id, author_id=author.id, author=author.username,
                            internal=data.internal, body=data.body, created_at=now)
    session.add(comment)
    if not customer and not data.internal and ticket.first_response_at is None:
        ticket.first_response_at = now
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    if customer and ticket.state == S.WAITING_CUSTOMER:
        to = S.IN_PROGRESS if ticket.assignee_id is not None else S.TRIAGED
        _move(session, ticket, to, actor=author, now=now, settings=settings,
              details={"reason": "the customer replied", "comment_id": comment.id})
    else:
        _refresh_sla(session, ticket, now=now, settings=settings)
    return comment


def list_comments(session: Session, ticket: Ticket, *, viewer: User | None) -> list[TicketComment]:
    """A ticket's comments, oldest first; customers never see internal ones."""
    query = select(TicketComment).where(TicketComment.ticket_id == ticket.id)
    if viewer is not None and viewer.role == Role.CUSTOMER:
        query = query.where(col(TicketComment.internal).is_(False))
    return list(session.exec(query.order_by(col(TicketComment.created_at), col(TicketComment.id))))


def add_time(session: Session, ticket: Ticket, data: TimeEntryCreate, *, actor: User,
             now: datetime | None = None) -> TimeEntry:
    """Book minutes of work on a ticket (center staff only)."""
    _require_staff(actor, "book time")
    assert ticket.id is not None
    assert actor.id is not None
    entry = TimeEntry(ticket_id=ticket.id, user_id=actor.id, user=actor.username, minutes=data.minutes,
                      note=data.note, created_at=now or utcnow())
    session.add(entry)
    session.flush()
    return entry


def list_time(session: Session, ticket: Ticket, *, viewer: User) -> list[TimeEntry]:
    """The time booked on a ticket (center staff only)."""
    _require_staff(viewer, "see time accounting")
    return list(session.exec(select(TimeEntry).where(TimeEntry.ticket_id == ticket.id)
                             .order_by(col(TimeEntry.created_at), col(TimeEntry.id))))


def _ensure_watcher(session: Session, ticket: Ticket, user_id: int, now: datetime) -> bool:
    exists = session.exec(select(TicketWatcher).where(TicketWatcher.ticket_id == ticket.id,
                                                      TicketWatcher.user_id == user_id)).first()
    if exists:
        return False
    assert ticket.id is not None
    session.add(TicketWatcher(ticket_id=ticket.id, user_id=user_id, added_at=now))
    session.flush()
    return True


def add_watcher(session: Session, ticket: Ticket, *, user_id: int, actor: User, now: datetime | None = None
                ) -> list[int]:
    """Add a watcher who may read the ticket (staff, or users of the ticket's organisation); return watcher ids."""
    now = now or utcnow()
    user = session.get(User, user_id)
    if user is None or not user.active or (
            user.role == Role.CUSTOMER and (user.organisation_id is None
                                            or user.organisation_id != ticket.requester_org_id)):
        raise ValidationError(f"user_id: user {user_id} not found or may not see this ticket")
    if actor.role == Role.CUSTOMER and user.role != Role.CUSTOMER:
        raise ForbiddenError("customers may add watchers from their own organisation only")
    if _ensure_watcher(session, ticket, user_id, now):
        _append_event(session, ticket, kind=TicketEventKind.WATCHER_ADDED, actor=actor, at=now, internal=True,
                      details={"user_id": user_id, "username": user.username})
    return watcher_ids(session, ticket)


def watcher_ids(session: Session, ticket: Ticket) -> list[int]:
    return list(session.exec(select(TicketWatcher.user_id).where(TicketWatcher.ticket_id == ticket.id)
                             .order_by(col(TicketWatcher.id))))


# --- attachments -----------------------------------------------------------------------------------------------


def sanitise_filename(name: str) -> str:
    """Keep a safe display name: no directories, control or shell characters, at most 150 characters."""
    base = unicodedata.normalize("NFKC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^\w.\-+() ]", "_", base).strip(" .")
    base = re.sub(r"_{2,}", "_", base)
    if len(base) > 150:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 150 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else base[:150]
    return base or "attachment"


def add_attachment(session: Session, ticket: Ticket, *, filename: str, content_type: str | None, data: bytes,
                   internal: bool, actor: User, settings: Settings | None = None, now: datetime | None = None
                   ) -> TicketAttachment:
    """Store a file under attachments_dir/<ticket>/<random key> and record its metadata."""
    settings = settings_or_default(settings)
    if ticket.state == S.CLOSED:
        raise ConflictError(f"ticket {ticket.id} is closed; reopen it to attach files")
    if actor.role == Role.CUSTOMER and internal:
        raise ForbiddenError("customers cannot add internal attachments")
    if len(data) > settings.attachment_max_bytes:
        raise PayloadTooLargeError(f"attachment larger than {settings.attachment_max_bytes} bytes")
    if not data:
        raise ValidationError("file: the attachment is empty")
    kind = (content_type or "").split(";")[0].strip().lower()
    key = secrets.token_hex(16)
    folder = Path(settings.attachments_dir) / str(ticket.id)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.part"
    tmp.write_bytes(data)
    os.replace(tmp, folder / key)
    assert ticket.id is not None
    row = TicketAttachment(ticket_id=ticket.id, uploaded_by_id=actor.id, uploaded_by=actor.username,
                           filename=sanitise_filename(filename), content_type=kind if kind in SAFE_CONTENT_TYPES
                           else "application/octet-stream", size_bytes=len(data),
                           sha256=hashlib.sha256(data).hexdigest(), storage_key=key, internal=internal,
                           created_at=now or utcnow())
    session.add(row)
    session.flush()
    return row


def list_attachments(session: Session, ticket: Ticket, *, viewer: User | None) -> list[TicketAttachment]:
    query = select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
    if viewer is not None and viewer.role == Role.CUSTOMER:
        query = query.where(col(TicketAttachment.internal).is_(False))
    return list(session.exec(query.order_by(col(TicketAttachment.id))))


def get_attachment(session: Session, ticket: Ticket, attachment_id: int, *, viewer: User | None,
                   settings: Settings | None = None) -> tuple[TicketAttachment, Path]:
    """Return an attachment of this ticket the viewer may see, and where its file is."""
    row = session.get(TicketAttachment, attachment_id)
    if row is None or row.ticket_id != ticket.id or (
            row.internal and viewer is not None and viewer.role == Role.CUSTOMER):
        raise NotFoundError(f"attachment {attachment_id} not found on ticket {ticket.id}")
    path = Path(settings_or_default(settings).attachments_dir) / str(row.ticket_id) / row.storage_key
    if not path.is_file():
        raise NotFoundError(f"the file of attachment {attachment_id} is missing from the attachment store")
    return row, path


# --- closing and verdicts --------------------------------------------------------------------------------------

ALLOWED_VERDICTS: dict[VerdictTarget, frozenset[VerdictKind]] = {
    VerdictTarget.PART: frozenset(VerdictKind),
    VerdictTarget.PART_TYPE: frozenset({VerdictKind.QUARANTINE, VerdictKind.RELEASE, VerdictKind.PROCESS_CHANGE}),
    VerdictTarget.ROBOT: frozenset({VerdictKind.PROCESS_CHANGE}),
}
_LINK_OF = {VerdictTarget.PART: LinkKind.PART, VerdictTarget.PART_TYPE: LinkKind.PART_TYPE,
            VerdictTarget.ROBOT: LinkKind.ROBOT}


@dataclass
class _Plan:
    index: int
    verdict: VerdictCreate
    kind: VerdictTarget
    target_id: int
    part: Part | None = None
    sub_part: Part | None = None


def _plan_verdicts(session: Session, ticket: Ticket, verdicts: Sequence[VerdictCreate]) -> list[_Plan]:
    """Check every verdict before anything is applied: linked target, verdict fits the target, sub-part."""
    linked = {(link.kind, link.target_id) for link in ticket_links(session, ticket)}
    plans = []
    for i, v in enumerate(verdicts):
        kind, target_id = v.target
        name = f"{kind.value.replace('_', ' ')} {target_id}"
        if v.verdict not in ALLOWED_VERDICTS[kind]:
            allowed = ", ".join(sorted(ALLOWED_VERDICTS[kind]))
            raise ValidationError(f"verdicts[{i}]: '{v.verdict}' does not apply to a {kind.value.replace('_', ' ')}; "
                                  f"allowed: {allowed}")
        if (_LINK_OF[kind], target_id) not in linked:
            raise ValidationError(f"verdicts[{i}]: {name} is not linked to ticket {ticket.id}; link it first")
        plan = _Plan(index=i, verdict=v, kind=kind, target_id=target_id)
        if kind == VerdictTarget.PART:
            plan.part = parts_service.get_part(session, target_id, for_update=True)
        elif kind == VerdictTarget.PART_TYPE:
            parts_service.get_part_type(session, target_id)
        if v.sub_part_id is not None:
            try:
                plan.sub_part = parts_service.get_part(session, v.sub_part_id, for_update=True)
            except NotFoundError:
                raise ValidationError(f"verdicts[{i}]: sub-part {v.sub_part_id} not found") from None
            if plan.sub_part.parent_part_id != target_id:
                raise ValidationError(f"verdicts[{i}]: part {plan.sub_part.serial} is not installed in part "
                                      f"{plan.part.serial if plan.part else target_id}")
        plans.append(plan)
    return plans


def _parts_of_type(session: Session, part_type_id: int, *, quarantined: bool, actor: User) -> list[Part]:
    """Every non-terminal part of a type with the given quarantine flag."""
    out: list[Part] = []
    offset = 0
    while True:
        rows, _ = parts_service.list_parts(session, viewer=actor, part_type_id=part_type_id,
                                           quarantined=quarantined, offset=offset, limit=500)
        out.extend(p for p in rows if p.status not in lifecycle.TERMINAL)
        if len(rows) < 500:
            return out
        offset += 500


def _apply_verdict(session: Session, ticket: Ticket, plan: _Plan, *, actor: User) -> tuple[list[int], list[int]]:
    """Record the part events of one verdict through the parts service; return (event ids, part ids)."""
    v = plan.verdict
    extra = {"ticket_id": ticket.id, "verdict": v.verdict.value}
    events: list[PartEvent] = []

    def record(part: Part, step: EventType, disposition: Disposition | None = None) -> None:
        data = EventCreate(type=step, disposition=disposition, note=v.note or None,
                           reason=f"ticket {ticket.id}: {v.verdict.value}")
        events.append(parts_service.record_event(session, part, data, actor=actor, extra_details=extra))

    part = plan.part
    kind = v.verdict
    if plan.kind == VerdictTarget.PART_TYPE and kind in (VerdictKind.QUARANTINE, VerdictKind.RELEASE):
        holding = kind == VerdictKind.RELEASE
        for each in _parts_of_type(session, plan.target_id, quarantined=holding, actor=actor):
            record(each, EventType.RELEASED if holding else EventType.QUARANTINED)
    elif part is not None:
        if kind == VerdictKind.APPROVE_REUSE:
            if part.quarantined:
                record(part, EventType.RELEASED)
            record(part, EventType.DISPOSITIONED, Disposition.REUSE)
        elif kind == VerdictKind.REQUIRE_REMANUFACTURE:
            record(part, EventType.DISPOSITIONED, Disposition.REMANUFACTURE)
        elif kind == VerdictKind.REQUIRE_REPLACEMENT:
            assert plan.sub_part is not None
            record(plan.sub_part, EventType.REMOVED)
            record(plan.sub_part, EventType.DISPOSITIONED, Disposition.RECYCLE)
            record(part, EventType.DISPOSITIONED, Disposition.REMANUFACTURE)
        elif kind in (VerdictKind.RECYCLE, VerdictKind.SCRAP):
            record(part, EventType.DISPOSITIONED,
                   Disposition.RECYCLE if kind == VerdictKind.RECYCLE else Disposition.SCRAP)
        elif kind == VerdictKind.QUARANTINE:
            record(part, EventType.QUARANTINED)
        elif kind == VerdictKind.RELEASE:
            record(part, EventType.RELEASED)
    return [e.id or 0 for e in events], sorted({e.part_id for e in events})


def close_ticket(session: Session, ticket: Ticket, data: CloseRequest, *, actor: User,
                 settings: Settings | None = None, now: datetime | None = None
                 ) -> tuple[Ticket, list[TicketVerdict]]:
    """Close with a resolution and verdicts; each verdict on a part becomes part events through the parts state
    machine. If the state machine refuses any of them the whole close is refused (409) and, since this raises
    before the session commits, nothing is applied."""
    settings = settings_or_default(settings)
    now = now or utcnow()
    if actor.role == Role.CUSTOMER:
        raise ForbiddenError("only the assignee or a manager may close a ticket")
    _require_worker(ticket, actor, f"close ticket {ticket.id}")
    if S.CLOSED not in TRANSITIONS[TicketState(ticket.state)]:
        raise _illegal(ticket, S.CLOSED)
    plans = _plan_verdicts(session, ticket, data.verdicts)
    rows: list[TicketVerdict] = []
    for plan in plans:
        try:
            event_ids, part_ids = _apply_verdict(session, ticket, plan, actor=actor)
        except IllegalTransitionError as exc:
            raise ConflictError(
                f"close refused, nothing was applied: verdict {plan.index + 1} ({plan.verdict.verdict.value} on "
                f"{plan.kind.value.replace('_', ' ')} {plan.target_id}): {exc.message}",
                extra=exc.extra | {"verdict_index": plan.index}) from exc
        assert ticket.id is not None
        rows.append(TicketVerdict(ticket_id=ticket.id, target_kind=plan.kind, target_id=plan.target_id,
                                  verdict=plan.verdict.verdict, note=plan.verdict.note,
                                  sub_part_id=plan.verdict.sub_part_id, decided_by_id=actor.id,
                                  decided_by=actor.username, decided_at=now, applied_part_ids=part_ids,
                                  part_event_ids=event_ids))
    session.add_all(rows)
    session.flush()
    for row in rows:
        if row.verdict == VerdictKind.PROCESS_CHANGE:
            _append_event(session, ticket, kind=TicketEventKind.PROCESS_CHANGE, actor=actor, at=now,
                          details={"target_kind": row.target_kind.value, "target_id": row.target_id,
                                   "note": row.note, "verdict_id": row.id})
    current = TicketState(ticket.state)
    ticket.state = S.CLOSED
    ticket.closed_at = now
    ticket.resolved_at = ticket.resolved_at or now
    ticket.resolution_summary = data.resolution
    _append_event(session, ticket, kind=TicketEventKind.CLOSED, actor=actor, at=now, from_state=current,
                  to_state=S.CLOSED, details={
                      "resolution": data.resolution,
                      "verdicts": [{"verdict_id": r.id, "target_kind": r.target_kind.value, "target_id": r.target_id,
                                    "verdict": r.verdict.value, "sub_part_id": r.sub_part_id,
                                    "part_event_ids": r.part_event_ids} for r in rows]})
    _refresh_sla(session, ticket, now=now, settings=settings)
    return ticket, rows


def verdicts_for_ticket(session: Session, ticket: Ticket) -> list[TicketVerdict]:
    return list(session.exec(select(TicketVerdict).where(TicketVerdict.ticket_id == ticket.id)
                             .order_by(col(TicketVerdict.id))))


def verdicts_for_part(session: Session, part_id: int) -> list[TicketVerdict]:
    """Every verdict that concerns a part, oldest first: on the part itself, on a part type when it changed this
    part (see ``applied_part_ids``), and replacement verdicts naming it as the sub-part. For the scoring domain."""
    part = parts_service.get_part(session, part_id)
    rows = session.exec(select(TicketVerdict).where(or_(
        and_(col(TicketVerdict.target_kind) == VerdictTarget.PART, col(TicketVerdict.target_id) == part_id),
        col(TicketVerdict.sub_part_id) == part_id,
        and_(col(TicketVerdict.target_kind) == VerdictTarget.PART_TYPE,
             col(TicketVerdict.target_id) == part.part_type_id),
    )).order_by(col(TicketVerdict.decided_at), col(TicketVerdict.id)))
    return [r for r in rows if r.target_kind != VerdictTarget.PART_TYPE or part_id in (r.applied_part_ids or [])]


# --- the periodic SLA check ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaCheckReport:
    checked: int
    warnings: int
    escalations: int
    already_recorded: int
    errors: int


def _least_loaded(session: Session, candidates: Sequence[User]) -> User | None:
    if not candidates:
        return None
    ids = [u.id for u in candidates]
    counted = session.execute(sa_select(col(Ticket.assignee_id), func.count()).where(
        col(Ticket.assignee_id).in_(ids), col(Ticket.state).in_(sorted(OPEN_STATES))).group_by(col(Ticket.assignee_id)))
    load: dict[Any, int] = dict(counted.all())
    return min(candidates, key=lambda u: (load.get(u.id, 0), u.id or 0))


def _escalation_target(session: Session, ticket: Ticket, level: int) -> tuple[str, User | None]:
    """Level 2: a second consultant (same specialty first, least loaded); level 3 and up: a manager."""
    if level >= 3:
        managers = list(session.exec(select(User).where(User.role == Role.MANAGER, col(User.active).is_(True))))
        return "manager", _least_loaded(session, managers)
    consultants = [u for u in session.exec(select(User).where(User.role == Role.CONSULTANT,
                                                               col(User.active).is_(True)))
                   if u.id != ticket.assignee_id]
    specialists = [u for u in consultants if ticket.category in specialty_categories(u.specialties or [])]
    return "second_consultant", _least_loaded(session, specialists or consultants)


def _record_alerts(session: Session, ticket: Ticket, status: sla.SlaStatus, *, settings: Settings,
                   now: datetime) -> tuple[int, int]:
    level = sla.escalation_level(status.fraction_used, settings.sla_escalation_thresholds)
    recorded = set(session.exec(select(TicketEvent.level).where(
        TicketEvent.ticket_id == ticket.id, col(TicketEvent.level).is_not(None))))
    warnings = escalations = 0
    clock = "response" if status.response_fraction_used >= status.resolution_fraction_used else "resolution"
    for lvl in range(1, level + 1):
        if lvl in recorded:
            continue
        details: dict[str, Any] = {"fraction_used": round(status.fraction_used, 4), "clock": clock,
                                   "threshold": settings.sla_escalation_thresholds[lvl - 1],
                                   "due_at": (status.response_due if clock == "response"
                                              else status.resolution_due).isoformat()}
        if lvl == 1:
            kind = TicketEventKind.SLA_WARNING
            warnings += 1
        else:
            kind = TicketEventKind.SLA_ESCALATION
            escalations += 1
            role, target = _escalation_target(session, ticket, lvl)
            details |= {"escalated_to_role": role, "escalated_to_id": target.id if target else None,
                        "escalated_to": target.username if target else None}
            if target is not None and target.id is not None:
                _ensure_watcher(session, ticket, target.id, now)
        _append_event(session, ticket, kind=kind, actor=None, at=now, level=lvl, internal=True, details=details)
    ticket.escalation_level = max(ticket.escalation_level, level)
    session.add(ticket)
    return warnings, escalations


def check_sla(session: Session, *, settings: Settings | None = None, now: datetime | None = None
              ) -> SlaCheckReport:
    """Refresh the SLA figures of every ticket whose clock runs and record warnings and escalations, each once.

    Each ticket is handled in its own savepoint with its row locked; the unique key (ticket_id, kind, level) on
    ticket events refuses a second copy if another checker got there first, and that ticket is simply skipped.
    A ticket is written only when a stored figure changes, so a quiet pass writes nothing.
    """
    settings = settings_or_default(settings)
    now = now or utcnow()
    cal = calendar_from_settings(settings)
    running = sorted(OPEN_STATES - PAUSED_STATES)  # a paused clock gains nothing: its figures stand as stored
    ids = list(session.exec(select(Ticket.id).where(col(Ticket.state).in_(running)).order_by(col(Ticket.id))))
    checked = warnings = escalations = duplicates = errors = 0
    for ticket_id in ids:
        checked += 1
        try:
            with session.begin_nested():
                ticket = session.exec(select(Ticket).where(Ticket.id == ticket_id).with_for_update()).first()
                if ticket is None or ticket.state not in running:
                    continue
                status = _refresh_sla(session, ticket, now=now, settings=settings, cal=cal)
                w, e = _record_alerts(session, ticket, status, settings=settings, now=now)
                session.flush()
            warnings += w
            escalations += e
        except (IntegrityError, ConflictError):
            duplicates += 1
        except OperationalError as exc:  # SQLite: another writer holds the database; the next pass catches up
            log.warning("SLA check stopped at ticket %s: %s", ticket_id, exc.orig)
            errors += 1
            break
        except Exception:  # noqa: BLE001 - one broken ticket must not stop the check of the others
            log.exception("SLA check failed for ticket %s", ticket_id)
            errors += 1
    return SlaCheckReport(checked=checked, warnings=warnings, escalations=escalations,
                          already_recorded=duplicates, errors=errors)


# --- small look-ups for the CLI --------------------------------------------------------------------------------


def find_user(session: Session, username: str) -> User:
    """Return the active user with this name, else NotFoundError."""
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFoundError(f"no active user '{username}'")
    return user


def sla_compliance(session: Session, *, viewer: User, start: datetime | None = None, end: datetime | None = None,
                   org_id: int | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Tickets resolved per month (by resolution time) that met or breached their SLA, counted in the database.

    A ticket breached when either its first-response or its resolution target was missed (flags kept up to date by
    the SLA check and on every change). Customers get their own organisation's tickets only.
    """
    scope = customer_org_scope(viewer)
    if scope is not None:
        org_id = scope
    if session.get_bind().dialect.name == "postgresql":
        month = func.to_char(Ticket.resolved_at, "YYYY-MM")
    else:
        month = func.strftime("%Y-%m", Ticket.resolved_at)
    breached = or_(col(Ticket.response_breached), col(Ticket.resolution_breached))
    query = sa_select(month, breached, func.count()).where(col(Ticket.resolved_at).is_not(None))
    if start is not None:
        query = query.where(col(Ticket.resolved_at) >= start)
    if end is not None:
        query = query.where(col(Ticket.resolved_at) < end)
    if org_id is not None:
        query = query.where(Ticket.requester_org_id == org_id)
    counts: dict[str, dict[str, int]] = {}
    for m, was_breached, n in session.execute(query.group_by(month, breached)):
        row = counts.setdefault(m, {"met": 0, "breached": 0})
        row["breached" if was_breached else "met"] += int(n)
    months = sorted(counts)
    met = sum(c["met"] for c in counts.values())
    total = met + sum(c["breached"] for c in counts.values())
    open_query = sa_select(func.count()).select_from(Ticket).where(col(Ticket.resolved_at).is_(None))
    if org_id is not None:
        open_query = open_query.where(Ticket.requester_org_id == org_id)
    open_breached = session.execute(open_query.where(breached)).scalar_one()
    return {"months": months, "met": [counts[m]["met"] for m in months],
            "breached": [counts[m]["breached"] for m in months],
            "compliance": met / total if total else None, "resolved": total,
            "open": session.execute(open_query).scalar_one(), "open_breached": open_breached}
