"""A realistic demo center, seeded once into an empty database and reused on the next start."""

from __future__ import annotations

import random

from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb import auth
from refurb.db import session_scope
from refurb.parts import service as parts_service
from refurb.parts.models import EventCreate, EventType, Grade, PartCategory, PartCreate, PartTypeCreate, RobotCreate

DEMO_PASSWORD = "refurb-demo"
USERS = [
    ("admin", "admin", None, []),
    ("manager", "mina", None, []),
    ("technician", "tae", None, []),
    ("consultant", "kim", None, ["testing", "remanufacturing"]),
    ("customer", "acme", "Acme Robotics", []),
]

# A 6-axis arm's main parts with typical masses (kg) and materials.
PART_TYPES = [
    ("SM-J1-3K", "J1-J3 AC servo motor 3 kW", PartCategory.SERVO_MOTOR, "09506000134352",
     [("steel", 6.5, 0.3), ("copper", 2.1, 0.1), ("aluminium", 1.4, 0.4), ("NdFeB magnet", 0.6, 0.0)], 30000, 1850.0),
    ("RV-80E", "RV reducer J2", PartCategory.REDUCER, "09506000134369",
     [("steel", 17.0, 0.3), ("cast iron", 1.5, 0.5)], 20000, 4200.0),
    ("ENC-23B", "23-bit absolute encoder", PartCategory.ENCODER, None,
     [("aluminium", 0.15, 0.4), ("electronics", 0.05, 0.0)], 40000, 420.0),
    ("CB-MAIN-5", "Controller main board", PartCategory.CONTROLLER_BOARD, None,
     [("electronics", 0.8, 0.0), ("steel", 0.4, 0.3)], 50000, 2600.0),
    ("CH-ARM-6", "Arm cable harness J1-J6", PartCategory.CABLE_HARNESS, None,
     [("copper", 3.2, 0.2), ("PVC", 1.8, 0.0)], 15000, 900.0),
    ("ARM-L2", "Lower arm casting", PartCategory.CASTING, None,
     [("cast aluminium", 38.0, 0.5)], 80000, 3100.0),
]


def seed(engine: Engine, *, robots: int = 6, rng_seed: int = 7) -> dict[str, tuple[str, str]]:
    """Seed the demo center unless it is already there; return a fresh API token per role."""
    logins: dict[str, tuple[str, str]] = {}
    with session_scope(engine) as session:
        existing = auth.get_user_by_username(session, "admin")
        if existing is None:
            _seed_center(session, robots=robots, rng=random.Random(rng_seed))
        for role, username, _, _ in USERS:
            user = auth.get_user_by_username(session, username)
            if user is not None:
                logins[role] = (username, auth.issue_token(session, user=user, name="demo"))
    return logins


def _seed_center(session: Session, *, robots: int, rng: random.Random) -> None:
    users = {}
    for role, username, org, specialties in USERS:
        user, _ = auth.create_user(session, auth.UserCreate(username=username, role=auth.Role(role), organisation=org,
                                                            specialties=specialties, password=DEMO_PASSWORD,
                                                            full_name=username.title()))
        users[role] = user
    orgs = [auth.get_or_create_organisation(session, name=n) for n in ("Acme Robotics", "Busan Metal", "Gimhae Auto")]
    types = []
    for number, name, cat, gtin, materials, life_h, price in PART_TYPES:
        types.append(parts_service.create_part_type(session, PartTypeCreate(
            part_number=number, name=name, category=cat, manufacturer="Demo OEM", gtin=gtin,
            compatible_models=["KR-16", "KR-30"], design_life_h=life_h, industry_average_life_h=life_h * 0.8,
            new_price=price,
            materials=[{"material": m, "mass_kg": kg, "recycled_fraction": rf} for m, kg, rf in materials])))
    tech = users["technician"]
    for r in range(robots):
        org = orgs[r % len(orgs)]
        robot = parts_service.create_robot(session, RobotCreate(serial=f"KR16-{2024000 + r}", model="KR-16",
                                                                manufacturer="Demo OEM", owner_org_id=org.id),
                                           actor=users["admin"])
        for pt in types:
            part = parts_service.create_part(session, PartCreate(
                serial=f"{pt.part_number}-{r:03d}{rng.randint(100, 999)}", part_type_id=pt.id or 0,
                operating_hours=round(rng.uniform(2000, 30000), 1), owner_org_id=org.id, source_robot_id=robot.id))
            steps = rng.randint(0, 4)
            if steps >= 1:
                parts_service.record_event(session, part, EventCreate(type=EventType.RECEIVED, station="intake"),
                                           actor=tech)
            if steps >= 2:
                grade = rng.choice([Grade.A, Grade.B, Grade.B, Grade.C])
                parts_service.record_event(session, part, EventCreate(type=EventType.INSPECTED, grade=grade,
                                                                      station="inspection"), actor=tech)
            if steps >= 3:
                parts_service.record_event(session, part, EventCreate(type=EventType.CLEANED, station="cleaning"),
                                           actor=tech)
            if steps >= 4:
                parts_service.record_event(session, part, EventCreate(type=EventType.INSTALLED, robot_id=robot.id,
                                                                      station="assembly"), actor=tech)
