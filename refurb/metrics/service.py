"""Center-level figures: fleet reliability per part type and per robot, the MCI calculator, circularity per part
type / robot / center, the remanufacturing KPIs and the part passport. Reuse scores live in
:mod:`refurb.metrics.scores`. Definitions: ``docs/api.md (metrics)``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, case, func, or_, select, type_coerce
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from refurb.auth import User, customer_org_scope
from refurb.config import Settings, get_settings
from refurb.consulting import service as consulting_service
from refurb.db import UTCDateTime, utcnow
from refurb.errors import ValidationError
from refurb.metrics import emission_factors, gather
from refurb.metrics.models import MCIRequest, finite_or_none
from refurb.metrics.scores import config_for, fleet_data, part_score
from refurb.parts import service as parts_service
from refurb.parts.models import (
    EventType,
    Installation,
    Part,
    PartEvent,
    PartStatus,
    PartType,
    Robot,
    RobotStatus,
)
from refurb.scoring.circularity import Component, MCIResult, company_mci, mci, mci_many
from refurb.scoring.reliability import fit_weibull, mtbf_mttr, reliability

FAILURE_RULE = (
    "A part fails at its first: failed 'tested' event; 'dispositioned' scrap or recycle event whose reason does not "
    "name a non-failure cause (REFURB_RELIABILITY_NON_FAILURE_REASONS), or that carries a scrap or "
    "require_replacement verdict; or replacement during a repair of its parent part. Its age is the operating_hours "
    "recorded on that event, else its current operating hours. Every other part is right-censored at its current "
    "operating hours (still running, or removed without failure). Failures at 0 h are counted apart."
)
SALVAGED = ("reuse", "remanufacture")


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def _mci_dict(result: MCIResult) -> dict[str, float]:
    return {"V": result.V, "W": result.W, "LFI": result.LFI, "X": result.X, "MCI": result.MCI}


# --- reliability ----------------------------------------------------------------------------------------------------


def part_type_reliability(session: Session, part_type_id: int, *, settings: Settings | None = None,
                          min_failures: int | None = None, confidence: float = 0.95) -> dict[str, Any]:
    """Fit the part type's two-parameter Weibull on operating hours with right censoring (live, from all its parts).

    Refuses (422) when there are too few failures to fit, naming the counts.
    """
    pt = parts_service.get_part_type(session, part_type_id)
    cfg = config_for(settings)
    needed = cfg.min_failures if min_failures is None else min_failures
    fleet = fleet_data(session, cfg, [part_type_id]).get(part_type_id, gather.FleetData())
    counts = {"n_failures": len(fleet.failures_h), "n_censored": len(fleet.censored_h),
              "n_zero_hour_failures": fleet.zero_hour_failures, "min_failures": needed}
    try:
        fit = fit_weibull(fleet.failures_h, fleet.censored_h, confidence=confidence, min_failures=needed)
    except ValueError as exc:
        raise ValidationError(
            f"part type {pt.part_number}: cannot fit a Weibull: {exc} (with {counts['n_censored']} censored parts); "
            "the reuse score uses the design-life fallback until there are enough failures",
            extra=counts | {"failure_rule": FAILURE_RULE}) from exc
    mission = cfg.warranty_h(str(pt.category))
    return {
        "part_type_id": pt.id, "part_number": pt.part_number, "distribution": "weibull_2p",
        "shape": fit.shape, "scale_h": fit.scale, "b10_h": fit.b10_h, "mttf_h": fit.mttf_h,
        "log_likelihood": fit.log_likelihood, "confidence": fit.confidence,
        "shape_ci": [finite_or_none(v) for v in fit.shape_ci], "scale_ci": [finite_or_none(v) for v in fit.scale_ci],
        "ci_method": "profile likelihood (Meeker & Escobar 1998, 8.2); null = unbounded",
        **counts,
        "warranty": {"mission_h": mission, "new_part_survival": reliability(mission, fit.shape, fit.scale)},
        "failure_rule": FAILURE_RULE,
        "failures": [{"part_id": f.part_id, "hours": h, "reason": f.reason, "occurred_at": f.occurred_at}
                     for f, h in sorted(fleet.failures, key=lambda x: x[1])],
    }


def _hours_along(events: Sequence[PartEvent]) -> dict[int, float]:
    """Return, for each event id, the part's operating hours known at that event (last recorded value, else 0)."""
    known = 0.0
    out: dict[int, float] = {}
    for ev in events:
        value = gather._number((ev.details or {}).get("operating_hours"))
        if value is not None:
            known = value
        out[ev.id or 0] = known
    return out


def robot_reliability(session: Session, robot_id: int, *, viewer: User | None,
                      settings: Settings | None = None) -> dict[str, Any]:
    """MTBF and MTTR of a (refurbished) robot in operating hours, from the installations of its parts.

    Operating hours: the longest run of any part installed in the robot (hours recorded at removal, or the part's
    current hours, minus the hours recorded at installation). A failure: a part whose installation in the robot
    ended in a failure by the reliability rule (during the installation, or after its removal and before it was
    installed anywhere else). Repair time: clock hours from the failed part's removal to the next installation in the
    same position of the robot.
    """
    robot = parts_service.get_robot(session, robot_id, viewer=viewer)
    cfg = config_for(settings)
    installs = list(session.execute(select(Installation).where(col(Installation.robot_id) == robot.id)
                                 .order_by(col(Installation.installed_at))).scalars())
    part_ids = sorted({i.part_id for i in installs})
    parts = {p.id: p for p in session.execute(select(Part).where(col(Part.id).in_(part_ids))).scalars()}
    events: dict[int, list[PartEvent]] = defaultdict(list)
    for ev in session.execute(select(PartEvent).where(col(PartEvent.part_id).in_(part_ids))
                           .order_by(col(PartEvent.part_id), col(PartEvent.seq))).scalars():
        events[ev.part_id].append(ev)
    hours_at: dict[int, float] = {}
    for evs in events.values():
        hours_at |= _hours_along(evs)

    runs: list[float] = []
    failures: list[dict[str, Any]] = []
    repairs: list[float] = []
    for inst in installs:
        part = parts[inst.part_id]
        evs = events[inst.part_id]
        by_id = {ev.id: ev for ev in evs}
        start = by_id.get(inst.installed_event_id)
        end = by_id.get(inst.removed_event_id)
        start_h = hours_at.get(inst.installed_event_id or 0, 0.0)
        end_h = hours_at.get(inst.removed_event_id or 0, part.operating_hours) if end else part.operating_hours
        runs.append(max(0.0, end_h - start_h))
        after = start.seq if start else 0
        next_install = min((ev.seq for ev in evs if ev.type == EventType.INSTALLED and ev.seq > after), default=None)
        causes = ((ev, gather.failure_of_event(str(ev.type), ev.details or {},
                                               is_failure_reason=cfg.is_failure_reason))
                  for ev in evs if ev.seq > after and (next_install is None or ev.seq < next_install))
        cause, reason = next(((ev, why) for ev, why in causes if why is not None), (None, None))
        if cause is None:
            continue
        repair_h = None
        if inst.removed_at is not None:
            replacement = next((o for o in installs if o.installed_at >= inst.removed_at and o is not inst
                                and (inst.position is None or o.position == inst.position)), None)
            if replacement is not None:
                repair_h = (replacement.installed_at - inst.removed_at).total_seconds() / 3600.0
                repairs.append(repair_h)
        failures.append({"part_id": part.id, "serial": part.serial, "position": inst.position,
                         "reason": reason, "failed_at": cause.occurred_at, "removed_at": inst.removed_at,
                         "repair_h": repair_h})
    operating_h = max(runs, default=0.0)
    members = parts_service.parts_of_robot(session, robot.id or 0)
    refurbished = robot.status in (RobotStatus.CERTIFIED, RobotStatus.SHIPPED) or any(
        _previous_life(p.received_at, p.reman_count, p.source_robot_id) for p in members)
    answer: dict[str, Any] = {
        "robot_id": robot.id, "serial": robot.serial, "refurbished": refurbished, "operating_h": operating_h,
        "n_failures": len(failures), "n_repairs": len(repairs), "mtbf_h": None, "mttr_h": None,
        "availability": None, "failures": failures,
        "basis": "operating hours from part installations; failures by the reliability rule; repair time in clock "
                 "hours from removal to the replacement's installation (docs/api.md (metrics))",
    }
    if operating_h > 0:
        stats = mtbf_mttr(operating_h, repairs, n_failures=len(failures))
        answer |= {"mtbf_h": stats.mtbf_h, "mttr_h": stats.mttr_h, "availability": stats.availability}
    return answer


# --- circularity ----------------------------------------------------------------------------------------------------


def calculate_mci(data: MCIRequest) -> dict[str, float]:
    """Run the EMF MCI calculator on a request body (pydantic has checked ranges; the maths checks again)."""
    components = [Component(**c.model_dump()) for c in data.components]
    try:
        result = mci(components, lifetime_ratio=data.lifetime_ratio, intensity_ratio=data.intensity_ratio)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    return _mci_dict(result)


@dataclass(frozen=True)
class Collection:
    """End-of-use collection of a part type observed at the center: C_U (salvaged) and C_R (recycled) shares."""

    reused: float
    recycled: float
    decided: int

    def describe(self) -> dict[str, Any]:
        return {"reused_collection": self.reused, "recycled_collection": self.recycled, "decided_parts": self.decided,
                "basis": "shares of this part type's parts with a recorded disposition: reuse or remanufacture "
                         "(C_U), recycle (C_R); none recorded: 0"}


def _collections(session: Session, part_type_ids: Iterable[int]) -> dict[int, Collection]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for type_id, disposition, n in session.execute(
        select(col(Part.part_type_id), col(Part.disposition), func.count())
        .where(col(Part.part_type_id).in_(sorted(set(part_type_ids))), col(Part.disposition).is_not(None))
        .group_by(col(Part.part_type_id), col(Part.disposition))
    ):
        counts[int(type_id)][str(disposition)] = int(n)
    out = {}
    for type_id in set(part_type_ids):
        c = counts.get(type_id, {})
        total = sum(c.values())
        out[type_id] = Collection(
            reused=(c.get("reuse", 0) + c.get("remanufacture", 0)) / total if total else 0.0,
            recycled=c.get("recycle", 0) / total if total else 0.0, decided=total)
    return out


def _lifetime_ratio(pt: PartType) -> float | None:
    if pt.design_life_h and pt.industry_average_life_h:
        return float(pt.design_life_h) / float(pt.industry_average_life_h)
    return None


def _materials(pt: PartType) -> list[tuple[str, float, float]]:
    return [(str(m.get("material", "")), float(m.get("mass_kg") or 0.0), float(m.get("recycled_fraction") or 0.0))
            for m in pt.materials or [] if (m.get("mass_kg") or 0) > 0]


def _components(pt: PartType, *, reused_share: float, collection: Collection) -> list[Component]:
    """One Component per material of a unit of this type; ``reused_share`` of the feedstock is reused (F_U)."""
    return [Component(mass_kg=mass, recycled_input=(1.0 - reused_share) * recycled, reused_input=reused_share,
                      recycled_collection=collection.recycled, reused_collection=collection.reused)
            for _, mass, recycled in _materials(pt)]


def _previous_life(received_at: datetime | None, reman_count: int | None, source_robot_id: int | None) -> bool:
    """A part has had a previous life (counts as reused feedstock F_U) when it came in as a core, was ever
    remanufactured, or was harvested from a robot."""
    return received_at is not None or bool(reman_count) or source_robot_id is not None


def part_type_circularity(session: Session, part_type_id: int) -> dict[str, Any]:
    """MCI of one unit of a part type: as new, as remanufactured, and as the center supplies it."""
    pt = parts_service.get_part_type(session, part_type_id)
    if not _materials(pt):
        raise ValidationError(f"part type {pt.part_number} has no material composition (materials with mass_kg); "
                              "its MCI is undefined")
    collection = _collections(session, [part_type_id])[part_type_id]
    ratio = _lifetime_ratio(pt)
    previous_life = or_(col(Part.received_at).is_not(None), col(Part.reman_count) > 0,
                        col(Part.source_robot_id).is_not(None))
    total_n, reused_n = session.execute(
        select(func.count(), func.coalesce(func.sum(case((previous_life, 1), else_=0)), 0))
        .where(col(Part.part_type_id) == part_type_id,
               or_(col(Part.installed_robot_id).is_not(None), col(Part.parent_part_id).is_not(None),
                   col(Part.status).in_([PartStatus.CERTIFIED, PartStatus.SHIPPED])))
    ).one()
    total_n, reused_n = int(total_n), int(reused_n)
    share = reused_n / total_n if total_n else 0.0

    def at(reused_share: float) -> dict[str, float]:
        return _mci_dict(mci(_components(pt, reused_share=reused_share, collection=collection),
                             lifetime_ratio=ratio or 1.0))

    return {
        "part_type_id": pt.id, "part_number": pt.part_number, "mass_kg": pt.mass_kg,
        "materials": pt.materials,
        "lifetime_ratio": ratio or 1.0,
        "lifetime_basis": "design_life_h / industry_average_life_h" if ratio else "unknown: 1 (industry average)",
        "collection": collection.describe(),
        "as_new": at(0.0), "remanufactured": at(1.0),
        "center": at(share) | {"reused_share": share, "units_supplied": total_n, "reused_units": reused_n},
    }


@dataclass
class _Member:
    part_id: int
    part_type_id: int
    robot_id: int
    reused: bool
    serial: str


def _robot_members(session: Session, robot_ids: Sequence[int]) -> list[_Member]:
    """Every part installed in these robots now, directly or inside other parts (one query per nesting level)."""
    out: list[_Member] = []
    fields = (col(Part.id), col(Part.part_type_id), col(Part.received_at), col(Part.reman_count),
              col(Part.source_robot_id), col(Part.serial))
    level: list[Any] = [row for ids in gather.chunks(robot_ids) for row in session.execute(
        select(*fields, col(Part.installed_robot_id)).where(col(Part.installed_robot_id).in_(ids)))]
    seen: set[int] = set()
    while level:
        frontier: dict[int, int] = {}
        for pid, type_id, received, reman, source, serial, robot in level:
            if pid in seen:
                continue
            seen.add(pid)
            out.append(_Member(pid, type_id, robot, _previous_life(received, reman, source), serial))
            frontier[pid] = robot
        if not frontier:
            break
        level = [(*row[:6], frontier[row[6]]) for ids in gather.chunks(frontier) for row in session.execute(
            select(*fields, col(Part.parent_part_id)).where(col(Part.parent_part_id).in_(ids)))]
    return out


def _products_mci(session: Session, members: list[_Member], robot_ids: Sequence[int]) -> dict[str, Any]:
    """Product-level MCI of each robot (multi-material, reused parts as F_U) with ``mci_many``; mass and value."""
    types = {pt.id: pt for pt in session.execute(select(PartType).where(col(PartType.id).in_(
        sorted({m.part_type_id for m in members})))).scalars()}
    collections = _collections(session, types)
    index = {rid: k for k, rid in enumerate(robot_ids)}
    mass, f_r, f_u, c_r, c_u, group = [], [], [], [], [], []
    lifetime_mass = np.zeros(len(robot_ids))
    lifetime_sum = np.zeros(len(robot_ids))
    value = np.zeros(len(robot_ids))
    reused_mass = np.zeros(len(robot_ids))
    for m in members:
        pt = types[m.part_type_id]
        k = index[m.robot_id]
        c = collections[m.part_type_id]
        part_mass = 0.0
        for _, kg, recycled in _materials(pt):
            mass.append(kg)
            f_r.append(0.0 if m.reused else recycled)
            f_u.append(1.0 if m.reused else 0.0)
            c_r.append(c.recycled)
            c_u.append(c.reused)
            group.append(k)
            part_mass += kg
        part_ratio = _lifetime_ratio(pt)
        if part_ratio is not None and part_mass > 0:
            lifetime_mass[k] += part_mass
            lifetime_sum[k] += part_mass * part_ratio
        value[k] += float(pt.new_price or 0.0)
        if m.reused:
            reused_mass[k] += part_mass
    ratio = np.divide(lifetime_sum, lifetime_mass, out=np.ones(len(robot_ids)), where=lifetime_mass > 0)
    if not mass:
        nan = np.full(len(robot_ids), np.nan)
        return {"mass_kg": np.zeros(len(robot_ids)), "reused_mass_kg": reused_mass, "value": value,
                "lifetime_ratio": ratio, "MCI": nan, "result": None}
    result = mci_many(np.array(mass), recycled_input=np.array(f_r), reused_input=np.array(f_u),
                      recycled_collection=np.array(c_r), reused_collection=np.array(c_u),
                      group=np.array(group, dtype=np.intp), n_groups=len(robot_ids), lifetime_ratio=ratio)
    return {"mass_kg": result.mass_kg, "reused_mass_kg": reused_mass, "value": value, "lifetime_ratio": ratio,
            "MCI": result.MCI, "result": result}


def robot_circularity(session: Session, robot_id: int, *, viewer: User | None) -> dict[str, Any]:
    """Product-level MCI of a robot from the parts installed in it now (reused parts count as F_U)."""
    robot = parts_service.get_robot(session, robot_id, viewer=viewer)
    assert robot.id is not None
    members = _robot_members(session, [robot.id])
    figures = _products_mci(session, members, [robot.id])
    result = figures["result"]
    mass = float(figures["mass_kg"][0])
    return {
        "robot_id": robot.id, "serial": robot.serial, "parts": len(members), "mass_kg": mass,
        "reused_mass_kg": float(figures["reused_mass_kg"][0]),
        "reused_share_by_mass": float(figures["reused_mass_kg"][0]) / mass if mass else None,
        "lifetime_ratio": float(figures["lifetime_ratio"][0]),
        "lifetime_basis": "mass-weighted mean of design_life_h / industry_average_life_h over parts that have both; "
                          "1 when none",
        "mci": None if result is None or not mass else {
            "V": float(result.V[0]), "W": float(result.W[0]), "LFI": float(result.LFI[0]), "X": float(result.X[0]),
            "MCI": float(result.MCI[0])},
        "components": [{"part_id": m.part_id, "serial": m.serial, "part_type_id": m.part_type_id, "reused": m.reused}
                       for m in members],
    }


# --- KPIs -------------------------------------------------------------------------------------------------------


def _org_parts(org_id: int | None) -> Select[Any]:
    query = select(col(Part.id))
    if org_id is None:
        return query
    owned = select(col(Robot.id)).where(col(Robot.owner_org_id) == org_id)
    return query.where(or_(col(Part.owner_org_id) == org_id, col(Part.installed_robot_id).in_(owned),
                           col(Part.source_robot_id).in_(owned)))


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


OUTCOMES = ("reuse", "remanufacture", "recycle", "scrap", "pending")


def _outcome(disposition: str | None, finished: bool, repaired: bool) -> str:
    """A visit's outcome: its recorded disposition, else reuse / remanufacture once certified or shipped."""
    if disposition in ("reuse", "remanufacture", "recycle", "scrap"):
        return disposition
    if finished:
        return "remanufacture" if repaired else "reuse"
    return "pending"


@dataclass
class _Visits:
    """Every intake in a period, as aligned columns (one entry per visit, in query order; no object per visit)."""

    keys: list[tuple[int, int]]  # (part id, seq of the 'received' event)
    part_type_id: list[int]
    source_robot_id: list[int | None]
    grade: list[str | None]
    outcome: list[str]
    cost: list[float | None]
    energy_kwh: list[float | None]
    period: Any = None  # (scope, start, end) the visits were read for

    def __len__(self) -> int:
        return len(self.keys)


def _visits_cte(scope: Select[Any] | None, start: datetime | None, end: datetime | None) -> Any:
    received = (
        select(col(PartEvent.part_id).label("part_id"), col(PartEvent.seq).label("seq"),
               col(PartEvent.occurred_at).label("at"),
               func.lead(col(PartEvent.seq)).over(partition_by=col(PartEvent.part_id),
                                                  order_by=col(PartEvent.seq)).label("next_seq"),
               type_coerce(func.lead(col(PartEvent.occurred_at)).over(partition_by=col(PartEvent.part_id),
                                                                      order_by=col(PartEvent.seq)),
                           UTCDateTime).label("next_at"))
        .where(col(PartEvent.type) == EventType.RECEIVED,
               *([] if scope is None else [col(PartEvent.part_id).in_(scope)]))
        .cte("received_visits")
    )
    period = []
    if start is not None:
        period.append(received.c.at >= start)
    if end is not None:
        period.append(received.c.at < end)
    return select(received.c.part_id, received.c.seq, received.c.at, received.c.next_seq,
                  received.c.next_at).where(*period).cte("visits")


def _visits(session: Session, scope: Select[Any] | None, start: datetime | None, end: datetime | None
            ) -> _Visits:
    """Every intake ('received' event) in the period with what happened during that visit, read as plain rows into
    aligned columns (no ORM objects, dates or enums decoded), in three aggregate queries. ``scope`` (part ids) None:
    every part.

    An event belongs to the visit opened by the part's latest 'received' event before it (a correlated lookup on
    the ``part_event (type, part_id, seq)`` index, no range join); the visit's grade and disposition are those of its
    latest inspection and disposition.
    """
    conn = session.connection()
    events = PartEvent.__table__  # type: ignore[attr-defined]
    received = events.alias("received")
    in_period = [received.c.type == EventType.RECEIVED]
    if scope is not None:
        in_period.append(received.c.part_id.in_(scope))
    if start is not None:
        in_period.append(received.c.occurred_at >= start)
    if end is not None:
        in_period.append(received.c.occurred_at < end)
    rows = conn.execute(select(received.c.part_id, received.c.seq, col(Part.part_type_id), col(Part.source_robot_id))
                        .join(Part, col(Part.id) == received.c.part_id).where(*in_period)
                        .order_by(received.c.part_id, received.c.seq)).all()
    keys = [(int(r[0]), int(r[1])) for r in rows]
    index = {key: i for i, key in enumerate(keys)}
    n = len(keys)
    out = _Visits(keys, [r[2] for r in rows], [r[3] for r in rows], [None] * n, ["pending"] * n, [None] * n,
                  [None] * n, (scope, start, end))
    if not n:
        return out
    ev = events.alias("ev")
    # events of the parts with a visit in the period (no filter at all for every part over all time)
    visited = [ev.c.part_id.in_(select(received.c.part_id).where(*in_period))] if len(in_period) > 1 else []

    def tag(*where: Any, details: bool = False) -> Any:
        """Events with the seq of the visit they belong to: the latest 'received' strictly before them (a running
        max over the part's events in seq order; 'received' rows are read for it, then dropped)."""
        opened = func.max(case((ev.c.type == EventType.RECEIVED, ev.c.seq))).over(
            partition_by=ev.c.part_id, order_by=ev.c.seq, rows=(None, -1))
        rows = select(ev.c.part_id, ev.c.seq, ev.c.type, *([ev.c.details] if details else []),
                      opened.label("visit_seq")).where(
            or_(ev.c.type == EventType.RECEIVED, *where), *visited).subquery()
        return select(rows).where(rows.c.type != EventType.RECEIVED, rows.c.visit_seq.is_not(None)).subquery()

    kinds = [EventType.INSPECTED, EventType.DISPOSITIONED, EventType.REPAIRED, EventType.CERTIFIED, EventType.SHIPPED]
    tagged = tag(ev.c.type.in_(kinds))
    per_visit = (select(tagged.c.part_id, tagged.c.visit_seq,
                        func.max(case((tagged.c.type == EventType.INSPECTED, tagged.c.seq))).label("inspected"),
                        func.max(case((tagged.c.type == EventType.DISPOSITIONED, tagged.c.seq))).label("decided"),
                        func.max(case((tagged.c.type == EventType.REPAIRED, 1), else_=0)).label("repaired"),
                        func.max(case((tagged.c.type.in_([EventType.CERTIFIED, EventType.SHIPPED]), 1), else_=0))
                        .label("finished"))
                 .group_by(tagged.c.part_id, tagged.c.visit_seq).subquery())
    inspection, decision = events.alias("inspection"), events.alias("decision")
    disposition: list[str | None] = [None] * n
    repaired, finished = [False] * n, [False] * n
    for part_id, visit_seq, was_repaired, was_finished, grade, disp in conn.execute(
        select(per_visit.c.part_id, per_visit.c.visit_seq, per_visit.c.repaired, per_visit.c.finished,
               inspection.c.details["grade"].as_string(), decision.c.details["disposition"].as_string())
        .outerjoin(inspection, and_(inspection.c.part_id == per_visit.c.part_id,
                                    inspection.c.seq == per_visit.c.inspected))
        .outerjoin(decision, and_(decision.c.part_id == per_visit.c.part_id, decision.c.seq == per_visit.c.decided))
    ):
        i = index.get((part_id, visit_seq))
        if i is None:  # a visit of the same part outside the period
            continue
        out.grade[i], disposition[i] = grade, disp
        repaired[i], finished[i] = bool(was_repaired), bool(was_finished)
    out.outcome = [_outcome(d, f, r) for d, f, r in zip(disposition, finished, repaired, strict=True)]
    # recorded costs and remanufacturing energy of each visit (rare details: summed in Python)
    with_amounts = tag(ev.c.details["cost"].as_string().is_not(None),
                       ev.c.details["energy_kwh"].as_string().is_not(None), details=True)
    for part_id, visit_seq, raw_cost, raw_energy in conn.execute(
        select(with_amounts.c.part_id, with_amounts.c.visit_seq, with_amounts.c.details["cost"].as_string(),
               with_amounts.c.details["energy_kwh"].as_string())
    ):
        i = index.get((part_id, visit_seq))
        if i is None:
            continue
        for column, raw in ((out.cost, raw_cost), (out.energy_kwh, raw_energy)):
            amount = gather._number(raw)
            if amount is not None and amount >= 0:
                column[i] = (column[i] or 0.0) + amount
    return out


def _embodied(pt: PartType, factors: emission_factors.EmissionFactors, unmatched: dict[str, float]) -> float:
    total = 0.0
    for name, kg, _ in _materials(pt):
        factor = factors.factor(name)
        if factor is None:
            unmatched[name] = unmatched.get(name, 0.0) + kg
        else:
            total += kg * factor
    return total


def _new_parts_fitted(session: Session, visits: _Visits) -> dict[tuple[int, int], list[int]]:
    """Part types of new parts (no previous life) installed into each salvaged core during its visit."""
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    salvaged = {key for key, outcome in zip(visits.keys, visits.outcome, strict=True) if outcome in SALVAGED}
    if not salvaged:
        return out
    parents = {part_id for part_id, _ in salvaged}
    # new parts installed into other parts (one query), kept for the salvaged cores; then those cores' visit windows
    rows = [(p, at, t) for p, at, t in session.execute(
        select(col(Installation.parent_part_id), col(Installation.installed_at), col(Part.part_type_id))
        .join(Part, col(Part.id) == Installation.part_id)
        .where(col(Installation.parent_part_id).is_not(None), col(Part.received_at).is_(None),
               col(Part.reman_count) == 0, col(Part.source_robot_id).is_(None))) if p in parents]
    if not rows:
        return out
    visits_q = _visits_cte(*visits.period)
    by_parent: dict[int, list[tuple[int, datetime, datetime | None]]] = defaultdict(list)
    for ids in gather.chunks({p for p, _, _ in rows}):
        for part_id, seq, at, next_at in session.execute(
            select(visits_q.c.part_id, visits_q.c.seq, visits_q.c.at, visits_q.c.next_at)
            .where(visits_q.c.part_id.in_(ids))
        ):
            if (part_id, seq) in salvaged:
                by_parent[part_id].append((seq, at, next_at))
    order = {key: i for i, key in enumerate(visits.keys)}
    for parent_id, installed_at, type_id in rows:
        for seq, received_at, next_at in sorted(by_parent.get(parent_id, []), key=lambda w: order[(parent_id, w[0])]):
            if installed_at >= received_at and (next_at is None or installed_at < next_at):
                out[(parent_id, seq)].append(type_id)
    return out


def kpis(session: Session, *, viewer: User, start: datetime | None = None, end: datetime | None = None,
         org_id: int | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Remanufacturing and circularity KPIs over intakes in [start, end) for one organisation or the center.

    Customers always get their own organisation. Every figure is defined in docs/api.md (metrics) (section KPIs).
    """
    settings = _settings(settings)
    scope_org = customer_org_scope(viewer)
    if scope_org is not None:
        org_id = scope_org
    if start is not None and end is not None and start >= end:
        raise ValidationError("start must be before end")
    for name, value in (("start", start), ("end", end)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} must carry a time zone, e.g. 2026-01-01T00:00:00+09:00 or ...Z")
    factors = emission_factors.load(settings.emission_factors_file)
    cfg = config_for(settings)

    visits = _visits(session, None if org_id is None else _org_parts(org_id), start, end)
    types = {pt.id: pt for pt in session.execute(select(PartType)).scalars()}
    mass_of = {i: pt.mass_kg for i, pt in types.items()}

    n = len(visits)
    total_mass = sum(mass_of[t] for t in visits.part_type_id)
    grades: dict[str, int] = {"A": 0, "B": 0, "C": 0, "scrap": 0, "uninspected": 0}
    mix: dict[str, dict[str, Any]] = {k: {"count": 0, "mass_kg": 0.0} for k in OUTCOMES}
    for grade, outcome, type_id in zip(visits.grade, visits.outcome, visits.part_type_id, strict=True):
        grades[grade if grade in grades else "uninspected"] += 1
        entry = mix[outcome]
        entry["count"] += 1
        entry["mass_kg"] += mass_of[type_id]
    decided = {k: mix[k] for k in ("reuse", "remanufacture", "recycle", "scrap")}
    decided_n = sum(m["count"] for m in decided.values())
    decided_mass = sum(m["mass_kg"] for m in decided.values())
    salvaged_n = mix["reuse"]["count"] + mix["remanufacture"]["count"]
    salvaged_mass = mix["reuse"]["mass_kg"] + mix["remanufacture"]["mass_kg"]
    for entry in mix.values():
        entry["share"] = _rate(entry["count"], n)

    # value retained and CO2e avoided over salvaged cores (per-type figures worked out once per part type)
    unmatched: dict[str, float] = {}
    per_type: dict[int, tuple[float, float, float, list[tuple[str, float]]]] = {
        type_id: (float(pt.new_price or 0.0), cfg.cost_fraction(str(pt.category)), _embodied(pt, factors, {}),
                  [(name, kg) for name, kg, _ in _materials(pt) if factors.factor(name) is None])
        for type_id, pt in types.items()}

    def add_unmatched(missing: list[tuple[str, float]]) -> None:
        for name, kg in missing:
            unmatched[name] = unmatched.get(name, 0.0) + kg

    fitted = _new_parts_fitted(session, visits)
    new_value = reman_cost = embodied = energy_kg = new_parts_kg = 0.0
    for key, outcome, type_id, cost, energy in zip(visits.keys, visits.outcome, visits.part_type_id, visits.cost,
                                                    visits.energy_kwh, strict=True):
        if outcome not in SALVAGED:
            continue
        price, fraction, type_embodied, missing = per_type[type_id]
        new_value += price
        reman_cost += cost if cost is not None else price * fraction
        embodied += type_embodied
        add_unmatched(missing)
        kwh = energy if energy is not None else factors.reman_energy_kwh_per_kg * mass_of[type_id]
        energy_kg += kwh * factors.grid_kg_per_kwh
        for child_type in fitted.get(key, []):
            new_parts_kg += per_type[child_type][2]
            add_unmatched(per_type[child_type][3])

    # robots: product salvage (robots the cores came from) and shipped robots (reuse share, center MCI)
    core_robots = {r for r in visits.source_robot_id if r is not None}
    robot_status = {rid: status for ids in gather.chunks(core_robots) for rid, status in session.execute(
        select(col(Robot.id), col(Robot.status)).where(col(Robot.id).in_(ids)))}
    robots_salvaged = sum(1 for s in robot_status.values() if s in (RobotStatus.CERTIFIED, RobotStatus.SHIPPED))
    robots_scrapped = sum(1 for s in robot_status.values() if s == RobotStatus.SCRAPPED)
    shipped = _shipped_robots(session, org_id, start, end)
    members = _robot_members(session, shipped) if shipped else []
    products = _products_mci(session, members, shipped) if shipped else None
    center: dict[str, Any] = {"value": None, "products": len(shipped),
                              "weighting": settings.circularity_center_weighting}
    shipped_mass = reused_mass = 0.0
    if products is not None:
        shipped_mass = float(products["mass_kg"].sum())
        reused_mass = float(products["reused_mass_kg"].sum())
        defined = ~np.isnan(products["MCI"])
        weights = products["value" if settings.circularity_center_weighting == "value" else "mass_kg"][defined]
        if defined.any() and weights.sum() > 0:
            center["value"] = company_mci(products["MCI"][defined], weights)
    return {
        "period": {"start": start, "end": end}, "org_id": org_id,
        "cores_received": {"count": n, "mass_kg": total_mass},
        "core_class_distribution": {g: {"count": c, "share": _rate(c, n)} for g, c in grades.items()},
        "disposition_mix": mix,
        "component_salvage_rate": {"by_count": _rate(salvaged_n, decided_n),
                                   "by_mass": _rate(salvaged_mass, decided_mass), "decided": decided_n,
                                   "pending": mix["pending"]["count"]},
        "core_recovery_rate": _rate(salvaged_n + mix["recycle"]["count"], decided_n),
        "core_disposal_rate": _rate(mix["scrap"]["count"], decided_n),
        "product_salvage_rate": {"rate": _rate(robots_salvaged, robots_salvaged + robots_scrapped),
                                 "robots_salvaged": robots_salvaged, "robots_scrapped": robots_scrapped,
                                 "robots_in_process": len(core_robots) - robots_salvaged - robots_scrapped},
        "reuse_share_of_shipped_robots": {"by_mass": _rate(reused_mass, shipped_mass), "robots": len(shipped),
                                          "reused_mass_kg": reused_mass, "mass_kg": shipped_mass},
        "value_retained": {"amount": new_value - reman_cost, "new_value": new_value, "reman_cost": reman_cost,
                           "ratio": _rate(new_value - reman_cost, new_value)},
        "co2e_avoided_kg": {"total": embodied - energy_kg - new_parts_kg, "embodied_kg": embodied,
                            "reman_energy_kg": energy_kg, "new_parts_fitted_kg": new_parts_kg,
                            "unmatched_materials_kg": unmatched, "factors_version": factors.version},
        "center_mci": center,
        "definitions": "docs/api.md (metrics)#kpis",
    }


def _shipped_robots(session: Session, org_id: int | None, start: datetime | None, end: datetime | None
                    ) -> list[int]:
    """Shipped robots whose latest part installation (their completion, as robots carry no ship date) falls in
    the period."""
    completed = (select(col(Installation.robot_id), func.max(col(Installation.installed_at)).label("done"))
                 .where(col(Installation.robot_id).is_not(None), col(Installation.removed_at).is_(None))
                 .group_by(col(Installation.robot_id)).subquery())
    query = (select(col(Robot.id)).join(completed, completed.c.robot_id == col(Robot.id))
             .where(col(Robot.status) == RobotStatus.SHIPPED))
    if org_id is not None:
        query = query.where(col(Robot.owner_org_id) == org_id)
    if start is not None:
        query = query.where(completed.c.done >= start)
    if end is not None:
        query = query.where(completed.c.done < end)
    return [int(r) for (r,) in session.execute(query.order_by(col(Robot.id)))]


# --- passport ---------------------------------------------------------------------------------------------------


def _verdicts(session: Session, part: Part, events: Sequence[PartEvent]) -> list[dict[str, Any]]:
    """Expert verdicts on the part, from the consulting service (falling back to the events that carry them)."""
    assert part.id is not None
    rows = consulting_service.verdicts_for_part(session, part.id)
    if rows:
        return [{"verdict": str(r.verdict), "ticket_id": r.ticket_id, "target_kind": str(r.target_kind),
                 "target_id": r.target_id, "sub_part_id": r.sub_part_id, "note": r.note,
                 "decided_by": r.decided_by, "decided_at": r.decided_at, "part_event_ids": r.part_event_ids}
                for r in rows]
    return [{"verdict": ev.details["verdict"], "ticket_id": ev.details.get("ticket_id"), "event_seq": ev.seq,
             "decided_at": ev.occurred_at} for ev in events if (ev.details or {}).get("verdict")]


def passport(session: Session, part_id: int, *, viewer: User | None, settings: Settings | None = None
             ) -> dict[str, Any]:
    """One JSON document for a serialised part, shaped for a Digital Product Passport (docs/api.md (metrics))."""
    settings = _settings(settings)
    part = parts_service.get_part(session, part_id, viewer=viewer)
    assert part.id is not None
    pt = parts_service.get_part_type(session, part.part_type_id)
    events = parts_service.list_events(session, part)
    report = parts_service.verify_chain(session, part)
    factors = emission_factors.load(settings.emission_factors_file)
    collection = _collections(session, [pt.id or 0])[pt.id or 0]
    reused = _previous_life(part.received_at, part.reman_count, part.source_robot_id)
    unmatched: dict[str, float] = {}
    embodied = _embodied(pt, factors, unmatched)
    circularity: dict[str, Any] = {"reused": reused, "embodied_co2e_kg": embodied,
                                   "unmatched_materials_kg": unmatched, "factors_version": factors.version,
                                   "collection": collection.describe(), "mci": None}
    if _materials(pt):
        circularity["mci"] = _mci_dict(mci(_components(pt, reused_share=1.0 if reused else 0.0,
                                                       collection=collection),
                                           lifetime_ratio=_lifetime_ratio(pt) or 1.0))
    link = None
    if pt.gtin:
        link = f"{settings.gs1_digital_link_base.rstrip('/')}/01/{pt.gtin}/21/{part.serial}"
    total_mass = pt.mass_kg
    recycled_mass = sum(kg * r for _, kg, r in _materials(pt))
    return {
        "passport_version": "refurb-dpp-1",
        "generated_at": utcnow(),
        "identity": {"part_id": part.id, "serial": part.serial, "gtin": pt.gtin, "part_number": pt.part_number,
                     "name": pt.name, "manufacturer": pt.manufacturer, "digital_link": link,
                     "record_url": f"{settings.public_base_url.rstrip('/')}/api/v1/parts/{part.id}/passport"},
        "status": {"status": str(part.status), "grade": part.grade, "disposition": part.disposition,
                   "quarantined": part.quarantined, "operating_hours": part.operating_hours, "cycles": part.cycles,
                   "reman_generation": part.reman_count, "max_reman_generations": pt.max_reman_generations},
        "part_type": {"id": pt.id, "part_number": pt.part_number, "category": str(pt.category),
                      "design_life_h": pt.design_life_h, "industry_average_life_h": pt.industry_average_life_h,
                      "compatible_models": pt.compatible_models},
        "materials": {"composition": pt.materials, "mass_kg": total_mass,
                      "recycled_content_share": recycled_mass / total_mass if total_mass else None},
        "genealogy": parts_service.genealogy(session, part),
        "events": [{"seq": e.seq, "type": str(e.type), "occurred_at": e.occurred_at, "actor": e.actor,
                    "station": e.station, "details": e.details, "hash": e.hash} for e in events],
        "chain": {"head": part.chain_head, "events": part.event_count} | parts_service.chain_report_dict(report),
        "tests": [{"seq": e.seq, "occurred_at": e.occurred_at, "passed": e.details.get("passed"),
                   "test_run_id": e.details.get("test_run_id"), "results": e.details.get("results", [])}
                  for e in events if e.type == EventType.TESTED],
        "verdicts": _verdicts(session, part, events),
        "score": part_score(session, part.id, viewer=viewer, settings=settings),
        "circularity": circularity,
    }

