"""Plain-function factories: ``make_x(session, **overrides)``; each commits so the API sees the rows."""

from __future__ import annotations

import itertools
from typing import Any

from sqlmodel import Session

from refurb import auth
from refurb.parts import service as parts_service
from refurb.parts.models import Part, PartCreate, PartType, PartTypeCreate, Robot, RobotCreate

_n = itertools.count(1)


def make_user(session: Session, role: str = "technician", *, org: str | None = None, **overrides: Any
              ) -> tuple[auth.User, str]:
    """Create a user and return it with an API token."""
    username = overrides.pop("username", f"{role}{next(_n)}")
    if role == "customer" and org is None:
        org = "Acme Robotics"
    user, token = auth.create_user(session, auth.UserCreate(username=username, role=auth.Role(role),
                                                            organisation=org, **overrides))
    session.commit()
    return user, token


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_part_type(session: Session, **overrides: Any) -> PartType:
    n = next(_n)
    data: dict[str, Any] = {"part_number": f"PT-{n}", "name": f"Part type {n}", "category": "servo_motor",
                            "materials": [{"material": "steel", "mass_kg": 5.0, "recycled_fraction": 0.2}],
                            "design_life_h": 20000, "new_price": 1000.0}
    data.update(overrides)
    pt = parts_service.create_part_type(session, PartTypeCreate(**data))
    session.commit()
    return pt


def make_robot(session: Session, **overrides: Any) -> Robot:
    actor = overrides.pop("actor", None) or make_user(session, "admin")[0]
    data: dict[str, Any] = {"serial": f"R-{next(_n)}", "model": "KR-16"}
    data.update(overrides)
    robot = parts_service.create_robot(session, RobotCreate(**data), actor=actor)
    session.commit()
    return robot


def make_part(session: Session, **overrides: Any) -> Part:
    if "part_type_id" not in overrides:
        overrides["part_type_id"] = make_part_type(session).id
    data: dict[str, Any] = {"serial": f"SN-{next(_n)}"}
    data.update(overrides)
    part = parts_service.create_part(session, PartCreate(**data))
    session.commit()
    return part
