"""A realistic demo center, seeded once into an empty database and reused on the next start.

Eight 6-axis robots from three customers at every stage (cores just received, in remanufacturing, on the test
bench, certified and shipped), each made of 22 serialised parts; parts in every state, including a quarantine,
scrapped and recycled cores with their replacements, and a motor that moved between two robots. A fleet history of
retired motors and reducers (failed or still running) feeds the reliability figures.
"""

from __future__ import annotations

import math
import random
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb import auth
from refurb.db import session_scope
from refurb.parts import service as parts_service
from refurb.parts.models import (
    Disposition,
    EventCreate,
    EventType,
    Grade,
    Part,
    PartCategory,
    PartCreate,
    PartType,
    PartTypeCreate,
    Robot,
    RobotCreate,
    RobotStatus,
)

DEMO_PASSWORD = "refurb-demo"
USERS = [
    ("admin", "admin", None, []),
    ("manager", "mina", None, []),
    ("technician", "tae", None, []),
    ("consultant", "kim", None, ["testing", "remanufacturing"]),
    ("consultant", "lee", None, ["design", "process"]),
    ("customer", "acme", "Acme Robotics", []),
]
CUSTOMERS = ["Acme Robotics", "Busan Metal Works", "Gimhae Auto Parts"]

# A 6-axis arm's main parts: (part number, name, category, GTIN, materials (material, kg, recycled fraction),
# design life h, new price KRW thousands, per-robot quantity, test limits)
PART_TYPES: list[tuple[Any, ...]] = [
    ("SM-3K", "AC servo motor 3 kW (J1-J3)", PartCategory.SERVO_MOTOR, "09506000134352",
     [("steel", 6.5, 0.3), ("copper", 2.1, 0.1), ("aluminium", 1.4, 0.4), ("NdFeB magnet", 0.6, 0.0)], 30000, 1850.0,
     3, "J1"),
    ("SM-1K", "AC servo motor 1 kW (J4-J6)", PartCategory.SERVO_MOTOR, "09506000134369",
     [("steel", 2.6, 0.3), ("copper", 0.9, 0.1), ("aluminium", 0.7, 0.4), ("NdFeB magnet", 0.2, 0.0)], 30000, 980.0,
     3, "J4"),
    ("RV-80E", "RV reducer (J1-J3)", PartCategory.REDUCER, "09506000134376",
     [("steel", 17.0, 0.3), ("cast iron", 1.5, 0.5)], 20000, 4200.0, 3,
     {"vibration_class": "iso10816-1_class_i"}),
    ("HD-25", "Harmonic drive (J4-J6)", PartCategory.REDUCER, None,
     [("steel", 1.9, 0.3), ("aluminium", 0.4, 0.4)], 15000, 1600.0, 3, {"vibration_class": "iso10816-1_class_i"}),
    ("ENC-23B", "23-bit absolute encoder", PartCategory.ENCODER, None,
     [("aluminium", 0.15, 0.4), ("electronics", 0.05, 0.0)], 40000, 420.0, 6, {}),
    ("CB-MAIN-5", "Controller main board", PartCategory.CONTROLLER_BOARD, None,
     [("electronics", 0.8, 0.0), ("steel", 0.4, 0.3)], 50000, 2600.0, 1, {}),
    ("CH-ARM-6", "Arm cable harness J1-J6", PartCategory.CABLE_HARNESS, None,
     [("copper", 3.2, 0.2), ("PVC", 1.8, 0.0)], 15000, 900.0, 1, {}),
    ("ARM-L2", "Lower arm casting", PartCategory.CASTING, None, [("cast aluminium", 38.0, 0.5)], 80000, 3100.0, 1,
     {}),
    ("ARM-U3", "Upper arm casting", PartCategory.CASTING, None, [("cast aluminium", 21.0, 0.5)], 80000, 2300.0, 1,
     {}),
]
JOINTS = {"SM-3K": ["J1", "J2", "J3"], "SM-1K": ["J4", "J5", "J6"], "RV-80E": ["J1", "J2", "J3"],
          "HD-25": ["J4", "J5", "J6"], "ENC-23B": ["J1", "J2", "J3", "J4", "J5", "J6"]}
# Robot stages: (status, how far its parts got)
STAGES = ["received", "received", "reman", "reman", "on_test", "on_test", "shipped", "reman"]


def seed(engine: Engine, *, rng_seed: int = 7) -> list[tuple[str, str, str]]:
    """Seed the demo center unless it is already there; return (role, user name, fresh API token) per demo user."""
    logins: list[tuple[str, str, str]] = []
    with session_scope(engine) as session:
        if auth.get_user_by_username(session, "admin") is None:
            seed_center(session, rng=random.Random(rng_seed))
        for role, username, _, _ in USERS:
            user = auth.get_user_by_username(session, username)
            if user is not None:
                logins.append((role, username, auth.issue_token(session, user=user, name="demo")))
    return logins


def seed_center(session: Session, *, rng: random.Random) -> dict[str, Any]:
    """Create the whole demo center in one transaction; return what later seeding steps need."""
    users: dict[str, auth.User] = {}
    for role, username, org, specialties in USERS:
        user, _ = auth.create_user(session, auth.UserCreate(
            username=username, role=auth.Role(role), organisation=org, specialties=specialties,
            password=DEMO_PASSWORD, full_name=username.title()))
        users[username] = user
    orgs = [auth.get_or_create_organisation(session, name=n) for n in CUSTOMERS]
    types: dict[str, PartType] = {}
    from refurb.telemetry.simulate import DEFAULT_PROFILE

    for number, name, cat, gtin, materials, life_h, price, _, limits in PART_TYPES:
        if isinstance(limits, str):  # a motor: the datasheet limits and bearing of that joint's profile
            limits = {k: v for k, v in DEFAULT_PROFILE.test_limits(int(limits[1])).items() if k != "joint"}
        types[number] = parts_service.create_part_type(session, PartTypeCreate(
            part_number=number, name=name, category=cat, manufacturer="Demo OEM", gtin=gtin,
            compatible_models=["KR-16", "KR-30"], design_life_h=life_h, industry_average_life_h=life_h * 0.8,
            new_price=price, test_limits=limits,
            materials=[{"material": m, "mass_kg": kg, "recycled_fraction": rf} for m, kg, rf in materials]))
    tech = users["tae"]
    robots: list[Robot] = []
    for r, stage in enumerate(STAGES):
        org = orgs[r % len(orgs)]
        robot = parts_service.create_robot(session, RobotCreate(
            serial=f"KR16-{2024101 + r}", model="KR-16", manufacturer="Demo OEM", owner_org_id=org.id),
            actor=users["admin"])
        robots.append(robot)
        _seed_robot(session, robot, stage, types, tech, rng)
    _seed_fleet_history(session, types, orgs, tech, rng)
    _seed_moves(session, robots, types, tech)
    _seed_test_history(session, robots, users)
    _seed_tickets(session, users, robots)
    return {"users": users, "orgs": orgs, "types": types, "robots": robots}


def _event(session: Session, part: Part, actor: auth.User, type_: EventType, **fields: Any) -> None:
    parts_service.record_event(session, part, EventCreate(type=type_, **fields), actor=actor)


def _seed_robot(session: Session, robot: Robot, stage: str, types: dict[str, PartType], tech: auth.User,
                rng: random.Random) -> None:
    parts: list[tuple[Part, str | None]] = []
    hours = rng.uniform(12000, 38000)
    for number, *_rest in PART_TYPES:
        qty = _rest[6]
        for i in range(qty):
            position = JOINTS.get(number, [None] * qty)[i]
            part = parts_service.create_part(session, PartCreate(
                serial=f"{number}-{robot.serial[-3:]}{i + 1}{rng.randint(10, 99)}", part_type_id=types[number].id or 0,
                operating_hours=round(hours * rng.uniform(0.6, 1.0), 1), cycles=int(hours * 900),
                owner_org_id=robot.owner_org_id, source_robot_id=robot.id))
            parts.append((part, position))
    for part, position in parts:
        _event(session, part, tech, EventType.RECEIVED, station="intake")
        if stage == "received":
            continue
        grade = rng.choices([Grade.A, Grade.B, Grade.C, Grade.SCRAP], weights=[3, 5, 2, 1])[0]
        findings = {Grade.A: [], Grade.B: ["wear-minor"], Grade.C: ["bearing-noise", "seal-leak"],
                    Grade.SCRAP: ["housing-cracked"]}[grade]
        _event(session, part, tech, EventType.INSPECTED, grade=grade, findings=findings, station="inspection")
        if grade == Grade.SCRAP:
            disp = Disposition.RECYCLE if rng.random() < 0.7 else Disposition.SCRAP
            _event(session, part, tech, EventType.DISPOSITIONED, disposition=disp, reason="inspection: cracked housing",
                   station="inspection")
            continue
        _event(session, part, tech, EventType.CLEANED, station="cleaning")
        if grade == Grade.C:
            _event(session, part, tech, EventType.REPAIRED, operations=["replace bearings", "new seals"],
                   station="repair")
        if stage == "reman":
            continue
        _event(session, part, tech, EventType.REASSEMBLED, station="assembly")
        _event(session, part, tech, EventType.INSTALLED, robot_id=robot.id, position=position, station="assembly")
    status = {"received": RobotStatus.RECEIVED, "reman": RobotStatus.IN_REMANUFACTURING,
              "on_test": RobotStatus.ON_TEST, "shipped": RobotStatus.ON_TEST}[stage]  # shipped after its run
    parts_service.set_robot_status(session, robot, status)
    if stage == "reman" and parts:
        suspect = parts[0][0]
        if suspect.status not in ("recycled", "scrapped"):
            _event(session, suspect, tech, EventType.QUARANTINED, reason="supplier batch recall 2026-11",
                   station="inspection")


def _seed_moves(session: Session, robots: list[Robot], types: dict[str, PartType], tech: auth.User) -> None:
    """A J1 motor that moved from one bench robot to another, a failed test, and new spare parts."""
    on_test = [r for r in robots if r.status == RobotStatus.ON_TEST]
    if len(on_test) >= 2:
        donor, target = on_test[0], on_test[1]
        motors = [p for p in parts_service.parts_of_robot(session, donor.id or 0)
                  if p.part_type_id == types["SM-3K"].id]
        if motors:
            _event(session, motors[0], tech, EventType.REMOVED, station="assembly", note=f"moved to {target.serial}")
            _event(session, motors[0], tech, EventType.INSTALLED, robot_id=target.id, position="J1",
                   station="assembly")
        others = [p for p in parts_service.parts_of_robot(session, target.id or 0)
                  if p.part_type_id == types["ENC-23B"].id]
        if others:
            _event(session, others[0], tech, EventType.TESTED, passed=False, station="test-bench-1",
                   results=[{"name": "encoder count check", "measured": 0.93, "limit": 0.99, "passed": False}])
    for i in range(3):
        parts_service.create_part(session, PartCreate(serial=f"SM-3K-NEW{i + 1:02d}",
                                                      part_type_id=types["SM-3K"].id or 0))


def certification_template(session: Session, actor: auth.User) -> Any:
    """The KR-16 certification template (datasheet AP 0.5 mm, RP 0.05 mm), created once."""
    from refurb.telemetry import runs_service
    from refurb.telemetry.runs import TestKind, TestTemplateCreate

    for template in runs_service.list_templates(session, robot_model="KR-16", kind=TestKind.CERTIFICATION)[0]:
        return template
    return runs_service.create_template(session, TestTemplateCreate(
        name="KR-16 certification (16 h run-in)", kind=TestKind.CERTIFICATION, robot_model="KR-16",
        checks=runs_service.default_certification_checks(ap_limit_mm=0.5, rp_limit_mm=0.05)), actor=actor)


def _backdate_installations(session: Session, robot: Robot, days: float) -> None:
    """Demo history: the robot was assembled before its run-in (installation periods, not the event record)."""
    from datetime import timedelta

    from sqlmodel import select

    from refurb.parts.models import Installation

    for inst in session.exec(select(Installation).where(Installation.robot_id == robot.id)):
        inst.installed_at = inst.installed_at - timedelta(days=days)
        session.add(inst)
    session.flush()


def _seed_test_history(session: Session, robots: list[Robot], users: dict[str, auth.User]) -> None:
    """Shipped robots passed a simulated 16.5 h certification run (their parts then certified and shipped)."""
    import time
    from datetime import UTC, datetime

    from refurb.telemetry import runs_service
    from refurb.telemetry.runs import AlarmRuleCreate, TestRunCreate
    from refurb.telemetry.simulate import SimulationConfig, insert_simulated_run

    for rule in (
        AlarmRuleCreate(name="Motor hot", key="j*_temp_c", comparison=">", threshold=55.0, n_consecutive=5,
                        clear_threshold=52.0, severity="warning", robot_model="KR-16"),
        AlarmRuleCreate(name="Motor overheating", key="j*_temp_c", comparison=">", threshold=80.0, n_consecutive=3,
                        clear_threshold=75.0, severity="critical", robot_model="KR-16"),
        AlarmRuleCreate(name="Current above rated", key="j*_current_a", comparison=">", threshold=6.2,
                        for_duration_s=30.0, clear_threshold=5.5, severity="warning", robot_model="KR-16"),
    ):
        runs_service.create_alarm_rule(session, rule)
    tech = users["tae"]
    template = certification_template(session, users["mina"])
    for robot, stage in zip(robots, STAGES, strict=True):
        if stage != "shipped":
            continue
        _backdate_installations(session, robot, 3)
        end_ms = int(time.time() * 1000) - 3_600_000
        config = SimulationConfig(start_ms=end_ms - int(16.5 * 3600 * 1000), duration_s=16.5 * 3600,
                                  sample_period_s=60.0, capture_every_s=4 * 3600.0, seed=robot.id or 0)
        insert_simulated_run(session, robot.id or 0, config)
        run = runs_service.start_run(session, TestRunCreate(
            robot_id=robot.id, template_id=template.id,
            window_start=datetime.fromtimestamp(config.start_ms / 1000, tz=UTC)), actor=tech)
        runs_service.finish_run(session, run, actor=tech,
                                window_end=datetime.fromtimestamp(config.end_ms / 1000, tz=UTC))
        for part in parts_service.parts_of_robot(session, robot.id or 0):
            if part.last_test_passed:
                _event(session, part, tech, EventType.CERTIFIED, station="test-bench-1")
                _event(session, part, tech, EventType.DISPOSITIONED, disposition=Disposition.REUSE,
                       reason=f"certified with robot {robot.serial}")
        parts_service.set_robot_status(session, robot, RobotStatus.SHIPPED)


# (title, category, priority, days ago opened, final state, customer asks?)
TICKETS: list[tuple[str, str, str, float, str, bool]] = [
    ("J3 motor grinding at 40 Hz: reuse or replace?", "testing", "high", 0.1, "new", True),
    ("Encoder count drift on bench robot", "testing", "normal", 0.5, "triaged", False),
    ("Reducer backlash beyond datasheet after rebuild", "remanufacturing", "high", 1.2, "assigned", False),
    ("Design review: lighter upper-arm casting", "design", "normal", 3.0, "in_progress", True),
    ("Cleaning process leaves residue on encoder discs", "process", "normal", 2.0, "waiting_customer", True),
    ("Harmonic drive replacement kits on order", "remanufacturing", "normal", 4.0, "waiting_parts", False),
    ("Vendor firmware for controller board CB-MAIN-5", "data_ai", "low", 6.0, "waiting_vendor", False),
    ("Certification of a rebuilt KR-16 for Busan Metal", "testing", "urgent", 9.0, "in_progress", True),
    ("Grease change interval for remanufactured reducers", "process", "low", 12.0, "resolved", True),
    ("Can cracked lower-arm castings be welded?", "remanufacturing", "high", 15.0, "closed", True),
    ("<script>alert('xss')</script> in a ticket title stays text", "other", "low", 0.3, "new", True),
]


def _seed_tickets(session: Session, users: dict[str, auth.User], robots: list[Robot]) -> None:
    """Tickets in every state, opened at different times so SLA clocks show ok, warning and breached."""
    from datetime import UTC, datetime, timedelta

    from refurb.consulting import service as tickets
    from refurb.consulting.models import CloseRequest, CommentCreate, TicketCreate, TimeEntryCreate, TransitionRequest

    now = datetime.now(UTC)
    kim, lee, mina, acme = users["kim"], users["lee"], users["mina"], users["acme"]
    acme_robots = [r for r in robots if r.owner_org_id == acme.organisation_id]
    for i, (title, category, priority, days, final, by_customer) in enumerate(TICKETS):
        opened = now - timedelta(days=days)
        robot = acme_robots[i % len(acme_robots)] if by_customer and acme_robots else robots[i % len(robots)]
        part_ids = [p.id for p in parts_service.parts_of_robot(session, robot.id or 0)[:1]] or [
            p.id for p in parts_service.list_parts(session, viewer=mina, owner_org_id=robot.owner_org_id, limit=1)[0]]
        ticket = tickets.create_ticket(session, TicketCreate(
            title=title, description=f"Raised about robot {robot.serial}.", category=category, priority=priority,
            robot_ids=[robot.id], part_ids=[pid for pid in part_ids if pid]), requester=acme if by_customer else mina,
            now=opened)
        assignee = kim if category in ("testing", "remanufacturing") else lee
        steps = {"new": [], "triaged": ["triaged"], "assigned": ["assigned"],
                 "in_progress": ["assigned", "in_progress"],
                 "waiting_customer": ["assigned", "in_progress", "waiting_customer"],
                 "waiting_parts": ["assigned", "in_progress", "waiting_parts"],
                 "waiting_vendor": ["assigned", "in_progress", "waiting_vendor"],
                 "resolved": ["assigned", "in_progress", "resolved"],
                 "closed": ["assigned", "in_progress"]}[final]
        at = opened
        for step in steps:
            at = at + timedelta(hours=2)
            tickets.transition(session, ticket, TransitionRequest(
                to=step, assignee_id=assignee.id if step == "assigned" else None), actor=mina, now=at)
            if step == "in_progress":
                tickets.add_comment(session, ticket, CommentCreate(body="We are looking at the test data now."),
                                    author=assignee, now=at)
                tickets.add_comment(session, ticket, CommentCreate(body="Internal: compare with batch 2026-10.",
                                                                   internal=True), author=assignee, now=at)
                tickets.add_time(session, ticket, TimeEntryCreate(minutes=45, note="data review"), actor=assignee,
                                 now=at)
        if final == "closed":
            tickets.close_ticket(session, ticket, CloseRequest(
                resolution="Crack within the weldable zone; repair by TIG welding and re-test.",
                verdicts=[{"robot_id": robot.id, "verdict": "process_change", "note": "add weld-repair step"}]),
                actor=assignee, now=at + timedelta(hours=3))
    tickets.check_sla(session, now=now)  # breach flags, warnings and escalations as the periodic check would


def _seed_fleet_history(session: Session, types: dict[str, PartType], orgs: list[Any], tech: auth.User,
                        rng: random.Random) -> None:
    """Retired motors and reducers with their hours: failures (scrapped on wear-out) and survivors."""
    for number, shape, scale in (("SM-3K", 2.3, 34000.0), ("RV-80E", 1.8, 26000.0)):
        pt = types[number]
        for i in range(40):
            life = scale * (-math.log(1 - rng.random())) ** (1 / shape)
            running = rng.uniform(3000, 30000)
            failed = life < running
            part = parts_service.create_part(session, PartCreate(
                serial=f"{number}-H{i:03d}", part_type_id=pt.id or 0,
                operating_hours=round(life if failed else running, 1), owner_org_id=orgs[i % len(orgs)].id))
            _event(session, part, tech, EventType.RECEIVED, station="intake")
            if failed:
                _event(session, part, tech, EventType.INSPECTED, grade=Grade.SCRAP, findings=["worn-out"],
                       station="inspection")
                _event(session, part, tech, EventType.DISPOSITIONED, disposition=Disposition.SCRAP,
                       reason="failure: wear-out", station="inspection")
            else:
                _event(session, part, tech, EventType.INSPECTED, grade=Grade.B, station="inspection")


# --- live robots on the test benches ------------------------------------------------------------------------------

LIVE_SPEEDUP = 30.0  # simulated seconds per wall second: a 16.5 h run-in plays in about 33 minutes
LIVE_FAULTS = ((), ("outer_race:J3",))  # the second bench robot has an outer-race defect on J3


class _Stopped(Exception):
    pass


class LiveBenches:
    """Simulated robots on the test benches publishing over MQTT while the demo runs; one has a fault."""

    def __init__(self, engine: Engine, settings: Any) -> None:
        self.engine, self.settings = engine, settings
        self.stop_event = __import__("threading").Event()
        self.threads: list[Any] = []
        self.robots: list[tuple[str, tuple[str, ...]]] = []

    def start(self) -> LiveBenches:
        import threading
        import time
        from datetime import UTC, datetime

        from refurb.telemetry import runs_service
        from refurb.telemetry.runs import RunState, TestRunCreate
        from refurb.telemetry.simulate import SimulationConfig, parse_fault, parse_mqtt_url, simulated_start_ms

        url = self.settings.mqtt_url or f"mqtt://127.0.0.1:{self.settings.embedded_mqtt_port}"
        target = parse_mqtt_url(url)
        duration_s = 16.5 * 3600
        start_ms = simulated_start_ms(int(time.time() * 1000), duration_s, LIVE_SPEEDUP)
        with session_scope(self.engine) as session:
            admin = auth.get_user_by_username(session, "mina")
            tech = auth.get_user_by_username(session, "tae")
            if admin is None or tech is None:
                return self
            bench, _ = parts_service.list_robots(session, viewer=admin, status=RobotStatus.ON_TEST, limit=len(
                LIVE_FAULTS))
            template = certification_template(session, admin)
            for robot, faults in zip(bench, LIVE_FAULTS, strict=False):
                running, _ = runs_service.list_runs(session, viewer=admin, robot_id=robot.id, state=RunState.RUNNING)
                if not running:
                    _backdate_installations(session, robot, 1)
                    runs_service.start_run(session, TestRunCreate(
                        robot_id=robot.id, template_id=template.id,
                        window_start=datetime.fromtimestamp(start_ms / 1000, tz=UTC)), actor=tech)
                self.robots.append((robot.serial, faults))
        for n, (serial, faults) in enumerate(self.robots):
            config = SimulationConfig(start_ms=start_ms, duration_s=duration_s, sample_period_s=2.0,
                                      capture_every_s=900.0, faults=tuple(parse_fault(f) for f in faults), seed=n)
            thread = threading.Thread(target=self._run, args=(config, serial, target), daemon=True,
                                      name=f"bench-{serial}")
            thread.start()
            self.threads.append(thread)
        return self

    def _sleep(self, seconds: float) -> None:
        if self.stop_event.wait(max(seconds, 0.0)):
            raise _Stopped

    def _run(self, config: Any, serial: str, target: Any) -> None:
        import logging

        from refurb.telemetry.simulate import publish

        log = logging.getLogger("refurb.demo")
        for _ in range(60):  # the broker starts with the web app: retry until it answers
            try:
                publish(config, serial, target, speedup=LIVE_SPEEDUP, sleep=self._sleep)
                return
            except _Stopped:
                return
            except (ConnectionError, OSError):
                if self.stop_event.wait(1.0):
                    return
            except Exception as exc:  # noqa: BLE001 - a simulated robot must never take the demo server down
                log.warning("simulated robot %s stopped: %s", serial, exc)
                return

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(5)
