"""Plain helpers for the consulting tests: a fixed clock in Seoul, tickets and parts in a known state."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from refurb.auth import User
from refurb.config import Settings
from refurb.consulting import service
from refurb.consulting.models import Ticket, TicketCreate, TicketState, TransitionRequest
from refurb.parts import service as parts_service
from refurb.parts.models import EventCreate, EventType, Grade, Part
from tests.factories import make_part, make_user

KST = ZoneInfo("Asia/Seoul")
H = 3600.0


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=KST)


MONDAY_10 = kst(2026, 6, 8, 10)  # a plain business week: Mon 2026-06-08 ... Fri 2026-06-12, no holidays


def open_ticket(session: Session, requester: User, settings: Settings, *, now: datetime = MONDAY_10,
                **fields: Any) -> Ticket:
    data = {"title": "J3 motor noise", "description": "grinding at 40 Hz", "category": "testing",
            "priority": "normal"} | fields
    ticket = service.create_ticket(session, TicketCreate(**data), requester=requester, settings=settings, now=now)
    session.commit()
    return ticket


def move(session: Session, ticket: Ticket, to: str, actor: User, settings: Settings, now: datetime,
         **fields: Any) -> Ticket:
    service.transition(session, ticket, TransitionRequest(to=TicketState(to), **fields), actor=actor,
                       settings=settings, now=now)
    session.commit()
    return ticket


def part_in_process(session: Session, **overrides: Any) -> Part:
    """A part received and inspected (grade B): dispositions are allowed from here."""
    part = make_part(session, **overrides)
    tech = make_user(session, "technician")[0]
    parts_service.record_event(session, part, EventCreate(type=EventType.RECEIVED), actor=tech)
    parts_service.record_event(session, part, EventCreate(type=EventType.INSPECTED, grade=Grade.B), actor=tech)
    session.commit()
    return part


def event_types(session: Session, part: Part) -> list[str]:
    return [str(e.type) for e in parts_service.list_events(session, part)]
