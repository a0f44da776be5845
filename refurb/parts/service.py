"""Parts business rules: catalog, robots, parts, the event record with its state machine and hash chain,
genealogy and CSV import/export. Functions take the session first and never commit."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from refurb.auth import Role, User, customer_org_scope
from refurb.db import count_rows, utcnow
from refurb.errors import ConflictError, ForbiddenError, IllegalTransitionError, NotFoundError, ValidationError
from refurb.parts import chain, lifecycle
from refurb.parts.models import (
    Disposition,
    EventCreate,
    EventType,
    Installation,
    Part,
    PartCreate,
    PartEvent,
    PartStatus,
    PartType,
    PartTypeCreate,
    PartTypeUpdate,
    PartUpdate,
    Robot,
    RobotCreate,
    RobotUpdate,
)

# --- part types ------------------------------------------------------------------------------------------------


def create_part_type(session: Session, data: PartTypeCreate) -> PartType:
    """Add a part type to the catalog (part number and GTIN are unique)."""
    if session.exec(select(PartType).where(PartType.part_number == data.part_number)).first():
        raise ConflictError(f"part type '{data.part_number}' already exists")
    if data.gtin and session.exec(select(PartType).where(PartType.gtin == data.gtin)).first():
        raise ConflictError(f"GTIN {data.gtin} is already used by another part type")
    payload = data.model_dump()
    payload["materials"] = [m.model_dump() for m in data.materials]
    pt = PartType(**payload)
    session.add(pt)
    session.flush()
    return pt


def update_part_type(session: Session, part_type: PartType, data: PartTypeUpdate) -> PartType:
    """Change the editable fields of a part type."""
    changes = data.model_dump(exclude_unset=True)
    if "materials" in changes and data.materials is not None:
        changes["materials"] = [m.model_dump() for m in data.materials]
    if changes.get("gtin"):
        other = session.exec(select(PartType).where(PartType.gtin == changes["gtin"])).first()
        if other is not None and other.id != part_type.id:
            raise ConflictError(f"GTIN {changes['gtin']} is already used by part type '{other.part_number}'")
    for key, value in changes.items():
        setattr(part_type, key, value)
    session.add(part_type)
    session.flush()
    return part_type


def get_part_type(session: Session, part_type_id: int) -> PartType:
    """Return a part type or raise NotFoundError."""
    pt = session.get(PartType, part_type_id)
    if pt is None:
        raise NotFoundError(f"part type {part_type_id} not found")
    return pt


def list_part_types(session: Session, *, category: str | None = None, q: str | None = None, offset: int = 0,
                    limit: int = 100) -> tuple[list[PartType], int]:
    """Return a page of part types and the total count."""
    query = select(PartType)
    if category:
        query = query.where(PartType.category == category)
    if q:
        like = f"%{q}%"
        query = query.where(or_(col(PartType.part_number).ilike(like), col(PartType.name).ilike(like)))
    rows = list(session.exec(query.order_by(PartType.part_number).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def find_part_type_by_gtin(session: Session, gtin: str) -> PartType | None:
    """Return the part type with this GTIN-14 (or None)."""
    return session.exec(select(PartType).where(PartType.gtin == gtin.zfill(14))).first()


def find_part_type_by_number(session: Session, part_number: str) -> PartType | None:
    """Return the part type with this part number (or None)."""
    return session.exec(select(PartType).where(PartType.part_number == part_number)).first()


# --- robots ----------------------------------------------------------------------------------------------------


def _check_org(session: Session, org_id: int | None) -> None:
    from refurb.auth import Organisation

    if org_id is not None and session.get(Organisation, org_id) is None:
        raise ValidationError(f"organisation {org_id} does not exist")


def create_robot(session: Session, data: RobotCreate, *, actor: User) -> Robot:
    """Register a robot (its serial is unique and safe in an MQTT topic)."""
    if session.exec(select(Robot).where(Robot.serial == data.serial)).first():
        raise ConflictError(f"robot '{data.serial}' already exists")
    owner = data.owner_org_id
    if actor.role == Role.CUSTOMER:
        owner = actor.organisation_id
    _check_org(session, owner)
    robot = Robot(serial=data.serial, model=data.model, manufacturer=data.manufacturer, owner_org_id=owner)
    session.add(robot)
    session.flush()
    return robot


def update_robot(session: Session, robot: Robot, data: RobotUpdate) -> Robot:
    """Change the editable fields of a robot."""
    changes = data.model_dump(exclude_unset=True)
    if "owner_org_id" in changes:
        _check_org(session, changes["owner_org_id"])
    for key, value in changes.items():
        setattr(robot, key, value)
    session.add(robot)
    session.flush()
    return robot


def get_robot(session: Session, robot_id: int, *, viewer: User | None = None) -> Robot:
    """Return a robot the viewer may see, else NotFoundError (never reveals other customers' robots)."""
    robot = session.get(Robot, robot_id)
    scope = customer_org_scope(viewer) if viewer else None
    if robot is None or (scope is not None and robot.owner_org_id != scope):
        raise NotFoundError(f"robot {robot_id} not found")
    return robot


def find_robot_by_serial(session: Session, serial: str) -> Robot | None:
    """Return the robot with this serial (or GIAI), or None."""
    return session.exec(select(Robot).where(Robot.serial == serial)).first()


def robot_ids_by_serial(session: Session, serials: Iterable[str]) -> dict[str, int]:
    """Return the ids of the robots with these serials (unknown serials are absent), 500 per query."""
    wanted = sorted(set(serials))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        rows = session.execute(sa_select(Robot.serial, Robot.id).where(col(Robot.serial).in_(chunk)))
        found.update({serial: int(rid) for serial, rid in rows})
    return found


def find_robot(session: Session, ref: str) -> Robot | None:
    """Return the robot with this serial, or with this id when `ref` is a number and no serial matches."""
    robot = find_robot_by_serial(session, ref)
    if robot is None and ref.isdigit():
        robot = session.get(Robot, int(ref))
    return robot


def set_robot_mqtt_password_hash(session: Session, robot: Robot, password_hash: str) -> Robot:
    """Store a robot's MQTT password hash (Mosquitto PBKDF2 format; the plain password is never stored)."""
    robot.mqtt_password_hash = password_hash
    session.add(robot)
    session.flush()
    return robot


def robot_mqtt_password_hashes(session: Session) -> list[tuple[str, str]]:
    """(serial, password hash) of every robot that has MQTT credentials, by serial."""
    rows = session.execute(sa_select(Robot.serial, Robot.mqtt_password_hash)
                           .where(col(Robot.mqtt_password_hash).is_not(None)).order_by(Robot.serial))
    return [(serial, str(pw_hash)) for serial, pw_hash in rows]


def list_robots(session: Session, *, viewer: User, status: str | None = None, model: str | None = None,
                owner_org_id: int | None = None, offset: int = 0, limit: int = 100) -> tuple[list[Robot], int]:
    """Return a page of the robots the viewer may see."""
    query = select(Robot)
    scope = customer_org_scope(viewer)
    if scope is not None:
        query = query.where(Robot.owner_org_id == scope)
    if status:
        query = query.where(Robot.status == status)
    if model:
        query = query.where(Robot.model == model)
    if owner_org_id is not None:
        query = query.where(Robot.owner_org_id == owner_org_id)
    rows = list(session.exec(query.order_by(Robot.id).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def set_robot_status(session: Session, robot: Robot, status: Any) -> Robot:
    """Set a robot's status (used by test runs, certification and shipping)."""
    robot.status = status
    session.add(robot)
    return robot


# --- parts -----------------------------------------------------------------------------------------------------


def _visible_parts(query: Any, viewer: User | None) -> Any:
    scope = customer_org_scope(viewer) if viewer else None
    if scope is None:
        return query
    owned_robots = select(Robot.id).where(Robot.owner_org_id == scope)
    return query.where(or_(Part.owner_org_id == scope, col(Part.installed_robot_id).in_(owned_robots)))


def create_part(session: Session, data: PartCreate) -> Part:
    """Register a serialised part of a known part type."""
    get_part_type(session, data.part_type_id)
    dup = session.exec(select(Part).where(Part.part_type_id == data.part_type_id, Part.serial == data.serial)).first()
    if dup:
        raise ConflictError(f"part '{data.serial}' of part type {data.part_type_id} already exists (id {dup.id})")
    _check_org(session, data.owner_org_id)
    if data.source_robot_id is not None:
        get_robot(session, data.source_robot_id)
    part = Part(**data.model_dump())
    session.add(part)
    session.flush()
    return part


def update_part(session: Session, part: Part, data: PartUpdate) -> Part:
    """Change the editable fields of a part (counters only grow)."""
    changes = data.model_dump(exclude_unset=True)
    _check_counters(part, changes.get("operating_hours"), changes.get("cycles"))
    for key, value in changes.items():
        if value is not None:
            setattr(part, key, value)
    part.updated_at = utcnow()
    session.add(part)
    session.flush()
    return part


def get_part(session: Session, part_id: int, *, viewer: User | None = None, for_update: bool = False) -> Part:
    """Return a part the viewer may see, else NotFoundError."""
    query = _visible_parts(select(Part).where(Part.id == part_id), viewer)
    if for_update:
        query = query.with_for_update()
    part = session.exec(query).first()
    if part is None:
        raise NotFoundError(f"part {part_id} not found")
    return part


def find_parts_by_serial(session: Session, serial: str, *, gtin: str | None = None) -> list[Part]:
    """Return the parts with this serial (narrowed to a GTIN's part type when given)."""
    query = select(Part).where(Part.serial == serial)
    if gtin:
        query = query.join(PartType, col(PartType.id) == Part.part_type_id).where(PartType.gtin == gtin.zfill(14))
    return list(session.exec(query))


def list_parts(session: Session, *, viewer: User, status: str | None = None, part_type_id: int | None = None,
               robot_id: int | None = None, grade: str | None = None, quarantined: bool | None = None,
               serial: str | None = None, owner_org_id: int | None = None, offset: int = 0, limit: int = 100
               ) -> tuple[list[Part], int]:
    """Return a page of the parts the viewer may see, filtered."""
    query = _visible_parts(select(Part), viewer)
    filters: list[Any] = []
    if status:
        filters.append(Part.status == status)
    if part_type_id is not None:
        filters.append(Part.part_type_id == part_type_id)
    if robot_id is not None:
        filters.append(Part.installed_robot_id == robot_id)
    if grade:
        filters.append(Part.grade == grade)
    if quarantined is not None:
        filters.append(Part.quarantined == quarantined)
    if serial:
        filters.append(Part.serial == serial)
    if owner_org_id is not None:
        filters.append(Part.owner_org_id == owner_org_id)
    if filters:
        query = query.where(*filters)
    rows = list(session.exec(query.order_by(Part.id).offset(offset).limit(limit)))
    return rows, count_rows(session, query)


def _check_counters(part: Part, hours: float | None, cycles: int | None) -> None:
    if hours is not None and hours < part.operating_hours:
        raise ValidationError(f"operating_hours cannot go down: part has {part.operating_hours} h, got {hours}")
    if cycles is not None and cycles < part.cycles:
        raise ValidationError(f"cycles cannot go down: part has {part.cycles}, got {cycles}")


# --- events ----------------------------------------------------------------------------------------------------


def part_state(part: Part) -> lifecycle.PartState:
    """The state-machine view of a part."""
    return lifecycle.PartState(
        status=PartStatus(part.status),
        quarantined=part.quarantined,
        installed=part.installed_robot_id is not None or part.parent_part_id is not None,
        last_test_passed=part.last_test_passed,
        last_test_at=part.last_test_at,
        last_repair_at=part.last_repair_at,
    )


def next_actions(part: Part) -> list[str]:
    """The steps a station may record on this part now."""
    return lifecycle.allowed_next(part_state(part))


def _refuse(part: Part, step: EventType, reason: str) -> IllegalTransitionError:
    state = part.status.value if hasattr(part.status, "value") else str(part.status)
    if part.quarantined:
        state += ", quarantined"
    return IllegalTransitionError(subject=f"part {part.serial}", current=state, attempted=str(step),
                                  allowed=next_actions(part), reason=reason)


def _ancestors(session: Session, part: Part) -> list[Part]:
    out: list[Part] = []
    cur = part
    seen = {part.id}
    while cur.parent_part_id is not None and cur.parent_part_id not in seen:
        parent = session.get(Part, cur.parent_part_id)
        if parent is None:
            break
        out.append(parent)
        seen.add(parent.id)
        cur = parent
    return out


def _append_event(session: Session, part: Part, *, type_: EventType, actor: User, station: str | None,
                  details: dict[str, Any], at: datetime) -> PartEvent:
    assert part.id is not None
    seq = part.event_count + 1
    prev = part.chain_head or chain.GENESIS
    content = chain.event_content(part_id=part.id, seq=seq, type_=type_, actor=actor.username, station=station,
                                  occurred_at=at, details=details, prev_hash=prev)
    ev = PartEvent(part_id=part.id, seq=seq, type=type_, actor_id=actor.id, actor=actor.username, station=station,
                   occurred_at=at, details=details, prev_hash=prev, hash=chain.event_hash(content))
    session.add(ev)
    part.event_count = seq
    part.chain_head = ev.hash
    part.updated_at = at
    if station:
        part.station = station
    session.add(part)
    try:
        session.flush()
    except IntegrityError as exc:  # another station wrote this part's next event first
        raise ConflictError(f"part {part.serial} changed while recording; scan again") from exc
    return ev


def _details(data: EventCreate) -> dict[str, Any]:
    raw = data.model_dump(mode="json", exclude={"type", "station"}, exclude_none=True)
    return {k: v for k, v in raw.items() if v != []}


def record_event(session: Session, part: Part, data: EventCreate, *, actor: User,
                 extra_details: dict[str, Any] | None = None) -> PartEvent:
    """Check a step against the state machine, apply it to the part and append it to the hash chain."""
    step = EventType(data.type)
    reason = lifecycle.check(part_state(part), step)
    if reason:
        raise _refuse(part, step, reason)
    _check_counters(part, data.operating_hours, data.cycles)
    now = utcnow()
    details = _details(data) | (extra_details or {})
    installation: Installation | None = None

    if step == EventType.RECEIVED:
        part.received_at = now
        part.disposition = None
        part.last_test_passed = None
        part.last_test_at = None
    elif step == EventType.INSPECTED:
        part.grade = data.grade
    elif step == EventType.REPAIRED:
        for child_id in data.replaced_part_ids:
            child = session.get(Part, child_id)
            if child is None or child.parent_part_id != part.id:
                raise ValidationError(f"replaced_part_ids: part {child_id} is not installed in part {part.serial}")
        if part.last_repair_at is None or (part.received_at and part.last_repair_at < part.received_at):
            part.reman_count += 1  # one remanufacturing generation per intake
        part.last_repair_at = now
    elif step == EventType.TESTED:
        part.last_test_passed = bool(data.passed)
        part.last_test_at = now
        if part.status not in (PartStatus.REGISTERED,):
            part.status = PartStatus.TESTED if data.passed else PartStatus.TEST_FAILED
    elif step == EventType.DISPOSITIONED:
        disp = Disposition(data.disposition)  # type: ignore[arg-type]
        installed = part.installed_robot_id is not None or part.parent_part_id is not None
        if disp in (Disposition.RECYCLE, Disposition.SCRAP) and installed:
            raise _refuse(part, step, f"an installed part cannot be sent to {disp.value}; remove it first")
        if disp in (Disposition.REUSE,) and part.quarantined:
            raise _refuse(part, step, "a quarantined part cannot be dispositioned for reuse; release it first")
        part.disposition = disp
        if disp == Disposition.RECYCLE:
            part.status = PartStatus.RECYCLED
        elif disp == Disposition.SCRAP:
            part.status = PartStatus.SCRAPPED
    elif step == EventType.QUARANTINED:
        part.quarantined = True
    elif step == EventType.RELEASED:
        part.quarantined = False
    elif step == EventType.INSTALLED:
        installation = _install(session, part, data, now)
        details["robot_serial" if data.robot_id else "parent_serial"] = (
            session.get(Robot, data.robot_id).serial if data.robot_id  # type: ignore[union-attr]
            else session.get(Part, data.parent_part_id).serial)  # type: ignore[union-attr]
    elif step == EventType.REMOVED:
        installation = _remove(session, part, now)
        details.setdefault("robot_id", installation.robot_id)
        details.setdefault("parent_part_id", installation.parent_part_id)
        details = {k: v for k, v in details.items() if v is not None}
    elif step == EventType.SHIPPED:
        part.station = None

    after = lifecycle.STATUS_AFTER.get(step)
    if after is not None:
        part.status = after
    if data.operating_hours is not None:
        part.operating_hours = data.operating_hours
    if data.cycles is not None:
        part.cycles = data.cycles
    ev = _append_event(session, part, type_=step, actor=actor, station=data.station, details=details, at=now)
    if installation is not None:
        if step == EventType.INSTALLED:
            installation.installed_event_id = ev.id
        else:
            installation.removed_event_id = ev.id
        session.add(installation)
    if step == EventType.REPAIRED:
        for child_id in data.replaced_part_ids:
            child = session.get(Part, child_id)
            assert child is not None
            record_event(session, child, EventCreate(type=EventType.REMOVED, station=data.station,
                                                     note=f"replaced during repair of {part.serial}"), actor=actor)
    session.flush()
    from refurb.metrics.scores import on_part_event  # lazy: metrics imports this module

    on_part_event(session, part, ev)
    return ev


def _install(session: Session, part: Part, data: EventCreate, at: datetime) -> Installation:
    if data.robot_id is not None:
        robot = session.get(Robot, data.robot_id)
        if robot is None:
            raise ValidationError(f"robot_id: robot {data.robot_id} does not exist")
        part.installed_robot_id = robot.id
    else:
        parent = session.get(Part, data.parent_part_id)
        if parent is None:
            raise ValidationError(f"parent_part_id: part {data.parent_part_id} does not exist")
        if parent.id == part.id or part.id in {a.id for a in _ancestors(session, parent)}:
            raise ValidationError(f"part {part.serial} cannot be installed inside itself")
        if parent.status in lifecycle.TERMINAL:
            raise ConflictError(f"parent part {parent.serial} is {parent.status}; nothing can be installed in it")
        part.parent_part_id = parent.id
    inst = Installation(part_id=part.id, robot_id=data.robot_id, parent_part_id=data.parent_part_id,  # type: ignore[arg-type]
                        position=data.position, installed_at=at)
    session.add(inst)
    return inst


def _remove(session: Session, part: Part, at: datetime) -> Installation:
    inst = session.exec(select(Installation).where(Installation.part_id == part.id,
                                                   col(Installation.removed_at).is_(None))).first()
    if inst is None:
        raise ConflictError(f"part {part.serial} has no open installation record")
    inst.removed_at = at
    part.installed_robot_id = None
    part.parent_part_id = None
    session.add(inst)
    return inst


def list_events(session: Session, part: Part) -> list[PartEvent]:
    """Return a part's events in chain order."""
    return list(session.exec(select(PartEvent).where(PartEvent.part_id == part.id).order_by(col(PartEvent.seq))))


def verify_chain(session: Session, part: Part) -> chain.ChainReport:
    """Re-hash a part's events and compare with the head stored on the part."""
    return chain.verify(list_events(session, part), expected_count=part.event_count, expected_head=part.chain_head)


def chain_report_dict(report: chain.ChainReport) -> dict[str, Any]:
    """The verify answer as JSON."""
    return asdict(report)


# --- genealogy -------------------------------------------------------------------------------------------------


def _children_at(session: Session, *, robot_id: int | None = None, parent_part_id: int | None = None,
                 at: datetime | None = None) -> list[tuple[Installation, Part]]:
    query = select(Installation, Part).join(Part, col(Part.id) == Installation.part_id)
    if robot_id is not None:
        query = query.where(Installation.robot_id == robot_id)
    else:
        query = query.where(Installation.parent_part_id == parent_part_id)
    if at is None:
        query = query.where(col(Installation.removed_at).is_(None))
    else:
        query = query.where(Installation.installed_at <= at,
                            or_(col(Installation.removed_at).is_(None), col(Installation.removed_at) > at))
    return [(inst, part) for inst, part in session.exec(query.order_by(col(Installation.installed_at)))]


def _tree(session: Session, rows: Iterable[tuple[Installation, Part]], at: datetime | None, depth: int = 0
          ) -> list[dict[str, Any]]:
    out = []
    for inst, part in rows:
        children = _children_at(session, parent_part_id=part.id, at=at) if depth < 20 else []
        out.append({
            "part_id": part.id, "serial": part.serial, "part_type_id": part.part_type_id, "status": part.status,
            "position": inst.position, "installed_at": inst.installed_at, "removed_at": inst.removed_at,
            "children": _tree(session, children, at, depth + 1),
        })
    return out


def robot_parts_at(session: Session, robot: Robot, at: datetime | None = None) -> list[dict[str, Any]]:
    """What a robot is made of now (at=None) or at a past time, recursively."""
    return _tree(session, _children_at(session, robot_id=robot.id, at=at), at)


def genealogy(session: Session, part: Part) -> dict[str, Any]:
    """Where a part has lived (every installation, robots and parent parts) and what it contains now."""
    history = []
    for inst in session.exec(select(Installation).where(Installation.part_id == part.id)
                             .order_by(col(Installation.installed_at))):
        entry: dict[str, Any] = {"installed_at": inst.installed_at, "removed_at": inst.removed_at,
                                 "position": inst.position}
        if inst.robot_id is not None:
            robot = session.get(Robot, inst.robot_id)
            entry |= {"kind": "robot", "robot_id": inst.robot_id, "serial": robot.serial if robot else None}
        else:
            parent = session.get(Part, inst.parent_part_id)
            entry |= {"kind": "part", "part_id": inst.parent_part_id, "serial": parent.serial if parent else None}
        history.append(entry)
    ancestors = _ancestors(session, part)
    root_robot_id = (ancestors[-1].installed_robot_id if ancestors else part.installed_robot_id)
    return {
        "part_id": part.id,
        "serial": part.serial,
        "installed_in": {"robot_id": part.installed_robot_id, "parent_part_id": part.parent_part_id},
        "ancestors": [{"part_id": a.id, "serial": a.serial} for a in ancestors],
        "root_robot_id": root_robot_id,
        "history": history,
        "children": _tree(session, _children_at(session, parent_part_id=part.id), None),
    }


# --- CSV import / export ---------------------------------------------------------------------------------------

CSV_COLUMNS = ["serial", "part_number", "operating_hours", "cycles", "owner_org", "notes"]
EXPORT_COLUMNS = ["id", "serial", "part_number", "status", "grade", "quarantined", "disposition", "station",
                  "operating_hours", "cycles", "reman_count", "installed_robot_id", "parent_part_id", "event_count",
                  "chain_head"]
MAX_IMPORT_ROWS = 100_000


def import_parts_csv(session: Session, text: str) -> list[Part]:
    """Import parts from CSV, all or nothing: every bad row is reported with its line number and reason."""
    from refurb.auth import Organisation

    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ValidationError("the CSV is empty: expected a header row with " + ", ".join(CSV_COLUMNS))
    header = [h.strip() for h in reader.fieldnames]
    missing = [c for c in ("serial", "part_number") if c not in header]
    if missing:
        raise ValidationError(f"the CSV header lacks required column(s): {', '.join(missing)}",
                              extra={"errors": [{"line": 1, "error": "missing column " + c} for c in missing]})
    types = {pt.part_number: pt for pt in session.exec(select(PartType))}
    orgs = {o.name: o for o in session.exec(select(Organisation))}
    errors: list[dict[str, Any]] = []
    seen: dict[tuple[int, str], int] = {}
    rows: list[Part] = []
    for index, raw in enumerate(reader):
        line = index + 2  # header is line 1
        if index >= MAX_IMPORT_ROWS:
            errors.append({"line": line, "error": f"more than {MAX_IMPORT_ROWS} rows; split the file"})
            break
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        problems: list[str] = []
        serial, number = row.get("serial", ""), row.get("part_number", "")
        if not serial:
            problems.append("serial is empty")
        elif len(serial) > 64:
            problems.append("serial is longer than 64 characters")
        pt = types.get(number)
        if pt is None:
            problems.append(f"unknown part_number {number!r}")
        hours, cycles = 0.0, 0
        try:
            hours = float(row.get("operating_hours") or 0)
            if not (0 <= hours < 1e7):
                raise ValueError
        except ValueError:
            problems.append(f"operating_hours must be a non-negative number, got {row.get('operating_hours')!r}")
        try:
            cycles = int(row.get("cycles") or 0)
            if cycles < 0:
                raise ValueError
        except ValueError:
            problems.append(f"cycles must be a non-negative integer, got {row.get('cycles')!r}")
        org_name = row.get("owner_org") or ""
        if org_name and org_name not in orgs:
            problems.append(f"unknown owner_org {org_name!r}")
        if pt is not None and serial:
            key = (pt.id or 0, serial)
            if key in seen:
                problems.append(f"duplicate of line {seen[key]}")
            seen[key] = line
            if session.exec(select(Part).where(Part.part_type_id == pt.id, Part.serial == serial)).first():
                problems.append(f"part {serial!r} of {number} already exists")
        if problems:
            errors.append({"line": line, "error": "; ".join(problems)})
            continue
        assert pt is not None
        rows.append(Part(serial=serial, part_type_id=pt.id or 0, operating_hours=hours, cycles=cycles,
                         notes=row.get("notes", "")[:4000], owner_org_id=orgs[org_name].id if org_name else None))
    if errors:
        raise ValidationError(f"CSV import refused: {len(errors)} bad row(s); nothing was imported",
                              extra={"errors": errors})
    session.add_all(rows)
    session.flush()
    return rows


def export_parts_csv(session: Session, *, viewer: User | None = None) -> str:
    """Export parts as CSV (the columns in EXPORT_COLUMNS)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    query = _visible_parts(select(Part, PartType.part_number).join(PartType, col(PartType.id) == Part.part_type_id),
                           viewer)
    for part, number in session.exec(query.order_by(col(Part.id))):
        values = part.model_dump() | {"part_number": number}
        writer.writerow(["" if values.get(c) is None else values.get(c) for c in EXPORT_COLUMNS])
    return out.getvalue()


def ensure_staff(user: User) -> None:
    """Refuse customers (403)."""
    if user.role == Role.CUSTOMER:
        raise ForbiddenError("customer accounts may not do this")


def parts_of_robot(session: Session, robot_id: int) -> Sequence[Part]:
    """Parts installed directly or indirectly in a robot now."""
    direct = list(session.exec(select(Part).where(Part.installed_robot_id == robot_id)))
    out = list(direct)
    frontier = [p.id for p in direct]
    while frontier:
        kids = list(session.exec(select(Part).where(col(Part.parent_part_id).in_(frontier))))
        out.extend(kids)
        frontier = [k.id for k in kids]
    return out


# --- scanning --------------------------------------------------------------------------------------------------


def _scan_record(session: Session, kind: str, obj: Any, gs1: dict[str, str] | None, parsed: dict[str, Any]
                 ) -> dict[str, Any]:
    from refurb.parts.models import PartPublic, PartTypePublic, RobotPublic

    if kind == "part":
        pt = session.get(PartType, obj.part_type_id)
        record = PartPublic.model_validate(obj).model_dump(mode="json")
        record["part_number"] = pt.part_number if pt else None
        record["part_type_name"] = pt.name if pt else None
        record["genealogy"] = {"installed_robot_id": obj.installed_robot_id, "parent_part_id": obj.parent_part_id,
                               "installations": len(list(session.exec(select(Installation.id).where(
                                   Installation.part_id == obj.id))))}
        actions = next_actions(obj)
    elif kind == "robot":
        record = RobotPublic.model_validate(obj).model_dump(mode="json")
        record["parts_installed"] = len(parts_of_robot(session, obj.id))
        actions = []
    else:
        record = PartTypePublic.model_validate(obj, update={"mass_kg": obj.mass_kg}).model_dump(mode="json")
        actions = ["register_part"]
    return {"kind": kind, "id": obj.id, "record": record, "gs1": gs1 or None, "parsed": parsed,
            "next_actions": actions}


def resolve_code(session: Session, code: str, *, viewer: User) -> tuple[str, Any, dict[str, str], dict[str, Any]]:
    """Find the part, robot or part type a scanned code names: (kind, object, gs1 AIs, what was parsed)."""
    from refurb.parts import scan

    text = scan.normalise(code) if isinstance(code, str) else ""
    # An exact serial match wins, so a numeric serial is never mistaken for a malformed GTIN.
    if text and not text.startswith("]") and scan.GS not in text:
        parts = find_parts_by_serial(session, text)
        if len(parts) == 1:
            return "part", get_part(session, parts[0].id or 0, viewer=viewer), {}, {"format": "plain", "text": text}
        robot = find_robot_by_serial(session, text)
        if robot is not None and not parts:
            return "robot", get_robot(session, robot.id or 0, viewer=viewer), {}, {"format": "plain", "text": text}
        if len(parts) > 1:
            raise ConflictError(f"serial {text!r} matches {len(parts)} parts of different types; scan the GS1 code "
                                "that includes the GTIN", extra={"candidates": [p.id for p in parts]})
    try:
        parsed = scan.parse_code(code)
    except scan.ScanError as exc:
        raise ValidationError(f"malformed code: {exc}", extra={"code": code}) from exc
    described = parsed.describe()

    def not_found(what: str) -> NotFoundError:
        return NotFoundError(f"no {what} matches the scanned code", extra={"parsed": described, "code": code})

    if parsed.kind == "label":
        ident = parsed.label_id or 0
        if parsed.label_kind == "parts":
            return "part", get_part(session, ident, viewer=viewer), {}, described
        if parsed.label_kind == "robots":
            return "robot", get_robot(session, ident, viewer=viewer), {}, described
        return "part_type", get_part_type(session, ident), {}, described
    gs1 = parsed.gs1
    if parsed.kind == "plain":
        raise not_found("part or robot")
    gtin, serial, giai = gs1.get("01"), gs1.get("21"), gs1.get("8004")
    if giai:
        robot = find_robot_by_serial(session, giai)
        if robot is None:
            raise not_found(f"robot with GIAI {giai}")
        return "robot", get_robot(session, robot.id or 0, viewer=viewer), gs1, described
    if serial:
        parts = find_parts_by_serial(session, serial, gtin=gtin)
        if not parts:
            raise not_found(f"part with serial {serial}" + (f" and GTIN {gtin}" if gtin else ""))
        if len(parts) > 1:
            raise ConflictError(f"serial {serial!r} matches {len(parts)} parts",
                                extra={"candidates": [p.id for p in parts]})
        return "part", get_part(session, parts[0].id or 0, viewer=viewer), gs1, described
    if gtin:
        pt = find_part_type_by_gtin(session, gtin)
        if pt is None:
            raise not_found(f"part type with GTIN {gtin}")
        return "part_type", pt, gs1, described
    raise not_found("part, robot or part type (the code has no GTIN, serial or GIAI)")


def scan(session: Session, *, code: str, action: EventCreate | None, actor: User) -> dict[str, Any]:
    """Resolve a scanned code and, with an action, record that step on the part in the same request."""
    kind, obj, gs1, described = resolve_code(session, code, viewer=actor)
    event = None
    if action is not None:
        if actor.role not in (Role.TECHNICIAN, Role.MANAGER, Role.ADMIN):
            raise ForbiddenError(f"role '{actor.role}' may look codes up but not record steps")
        if kind != "part":
            what = kind.replace("_", " ")
            raise ValidationError(f"an action can only be recorded on a part; the code names a {what}")
        event = record_event(session, obj, action, actor=actor)
        session.refresh(obj)
    out = _scan_record(session, kind, obj, gs1, described)
    if event is not None:
        from refurb.parts.models import PartEventPublic

        out["event"] = PartEventPublic.model_validate(event).model_dump(mode="json")
    return out
