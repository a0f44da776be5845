"""Plain helpers for the metrics tests: record events on parts the way stations and consultants do."""

from __future__ import annotations

import math
from typing import Any

from sqlmodel import Session

from refurb.auth import User
from refurb.metrics.models import PartScore
from refurb.metrics.scores import current_snapshot
from refurb.parts import service as parts_service
from refurb.parts.models import EventCreate, Part, PartEvent

#: kg CO2e per kg of the shipped table (emission_factors.json, ICE v2.0)
STEEL, COPPER, GRID = 1.46, 2.7, 0.4781
#: the design-life fallback: B10 = design life with shape 2
FALLBACK_SHAPE = 2.0


def record(session: Session, part: Part, actor: User, type_: str, *, extra: dict[str, Any] | None = None,
           **fields: Any) -> PartEvent:
    """Record one event through the parts service (which runs the scoring hook) and commit."""
    ev = parts_service.record_event(session, part, EventCreate(type=type_, **fields), actor=actor,
                                    extra_details=extra)
    session.commit()
    return ev


def snapshot(session: Session, part: Part) -> PartScore:
    snap = current_snapshot(session, part.id or 0)
    assert snap is not None
    return snap


def fallback_survival(age_h: float, mission_h: float, design_life_h: float, shape: float = FALLBACK_SHAPE) -> float:
    """R(mission | age) of the Weibull whose B10 is the design life (written out, not taken from refurb)."""
    scale = design_life_h / (-math.log(0.9)) ** (1 / shape)
    return math.exp((age_h / scale) ** shape - ((age_h + mission_h) / scale) ** shape)


def close_with_verdicts(session: Session, settings: Any, *verdicts: dict[str, Any]) -> int:
    """Open a ticket on the parts named in the verdicts, assign it and close it with them; return its id."""
    from refurb.consulting import service as consulting_service
    from refurb.consulting.models import CloseRequest, TicketCreate, TicketState, TransitionRequest, VerdictCreate
    from tests.factories import make_user

    manager = make_user(session, "manager")[0]
    kim = make_user(session, "consultant", specialties=["testing"])[0]
    ticket = consulting_service.create_ticket(
        session, TicketCreate(title="review", category="testing", part_ids=sorted({v["part_id"] for v in verdicts})),
        requester=manager, settings=settings)
    consulting_service.transition(session, ticket, TransitionRequest(to=TicketState.ASSIGNED, assignee_id=kim.id),
                                  actor=manager, settings=settings)
    consulting_service.close_ticket(session, ticket, CloseRequest(
        resolution="reviewed", verdicts=[VerdictCreate(**v) for v in verdicts]), actor=kim, settings=settings)
    session.commit()
    assert ticket.id is not None
    return ticket.id
