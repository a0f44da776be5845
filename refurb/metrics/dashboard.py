"""What the center dashboard shows, aggregated in the database (GROUP BY) or numpy, never row objects per part."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from refurb.auth import User, customer_org_scope
from refurb.config import Settings
from refurb.metrics import gather, scores
from refurb.metrics import service as metrics_service
from refurb.parts.models import Part, PartEvent, PartType, Robot, RobotStatus

OUTCOMES = ("reuse", "remanufacture", "recycle", "scrap", "pending")


def _month(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _outcome(disposition: str | None, status: str | None) -> str:
    if status == "recycled":
        return "recycle"
    if status == "scrapped":
        return "scrap"
    return disposition if disposition in OUTCOMES else "pending"


def _scoped(query: Any, org_id: int | None) -> Any:
    return query if org_id is None else query.where(Part.owner_org_id == org_id)


def intake_by_month(session: Session, *, start: datetime | None, end: datetime | None, org_id: int | None
                    ) -> dict[str, Any]:
    """Cores received per month (intake events) split by the part's current outcome."""
    month = _month(session, PartEvent.occurred_at)
    query = (select(month, Part.disposition, Part.status, func.count())
             .join(Part, col(Part.id) == PartEvent.part_id).where(PartEvent.type == "received"))
    if start is not None:
        query = query.where(PartEvent.occurred_at >= start)
    if end is not None:
        query = query.where(PartEvent.occurred_at < end)
    query = _scoped(query, org_id).group_by(month, Part.disposition, Part.status)
    counts: dict[str, dict[str, int]] = {}
    for m, disposition, status, n in session.execute(query):
        row = counts.setdefault(m, dict.fromkeys(OUTCOMES, 0))
        row[_outcome(disposition, status)] += int(n)
    months = sorted(counts)
    return {"months": months, "series": {o: [counts[m][o] for m in months] for o in OUTCOMES}}


def _received_in(start: datetime | None, end: datetime | None) -> Any:
    query = select(PartEvent.part_id).where(PartEvent.type == "received")
    if start is not None:
        query = query.where(PartEvent.occurred_at >= start)
    if end is not None:
        query = query.where(PartEvent.occurred_at < end)
    return query


def grade_flows(session: Session, *, start: datetime | None, end: datetime | None, org_id: int | None
                ) -> list[tuple[str, str, int]]:
    """Sankey flows intake -> grade -> outcome for the parts received in the period."""
    query = (select(Part.grade, Part.disposition, Part.status, func.count())
             .where(col(Part.id).in_(_received_in(start, end))))
    query = _scoped(query, org_id).group_by(Part.grade, Part.disposition, Part.status)
    by_grade: dict[str, int] = {}
    flows: dict[tuple[str, str], int] = {}
    for grade, disposition, status, n in session.execute(query):
        g = f"grade {grade}" if grade else "not inspected"
        by_grade[g] = by_grade.get(g, 0) + int(n)
        key = (g, _outcome(disposition, status))
        flows[key] = flows.get(key, 0) + int(n)
    out = [("intake", g, n) for g, n in sorted(by_grade.items())]
    out += [(g, o, n) for (g, o), n in sorted(flows.items())]
    return out


def rates_by_part_type(session: Session, *, start: datetime | None, end: datetime | None, org_id: int | None
                       ) -> dict[str, Any]:
    """Salvage rate (reuse + remanufacture over decided, by count and mass) and recovery rate (plus recycle) per
    part type, for the parts received in the period."""
    query = (select(Part.part_type_id, Part.disposition, Part.status, func.count())
             .where(col(Part.id).in_(_received_in(start, end))))
    query = _scoped(query, org_id).group_by(Part.part_type_id, Part.disposition, Part.status)
    types = {pt.id: pt for pt in session.execute(select(PartType)).scalars()}
    tally: dict[int, dict[str, int]] = {}
    for type_id, disposition, status, n in session.execute(query):
        row = tally.setdefault(type_id, dict.fromkeys(OUTCOMES, 0))
        row[_outcome(disposition, status)] += int(n)
    labels, by_count, by_mass, recovery = [], [], [], []
    for type_id, row in sorted(tally.items(), key=lambda kv: types[kv[0]].part_number):
        decided = sum(row[o] for o in ("reuse", "remanufacture", "recycle", "scrap"))
        salvaged = row["reuse"] + row["remanufacture"]
        labels.append(types[type_id].part_number)
        rate = salvaged / decided if decided else None
        by_count.append(rate)
        by_mass.append(rate)  # one part type: every part has the type's mass, so the mass rate equals the count rate
        recovery.append((salvaged + row["recycle"]) / decided if decided else None)
    return {"part_types": labels, "salvage_by_count": by_count, "salvage_by_mass": by_mass, "recovery": recovery}


def robot_mci(session: Session, *, viewer: User, org_id: int | None, limit: int = 24) -> dict[str, Any]:
    """MCI of the most recent certified or shipped robots (product level), all robots in one batch (the figures of
    ``robot_circularity`` for each)."""
    query = select(col(Robot.id), col(Robot.serial)).where(
        col(Robot.status).in_([RobotStatus.CERTIFIED, RobotStatus.SHIPPED]))
    scope = customer_org_scope(viewer)
    if scope is not None:
        org_id = scope  # the viewer sees only its own robots, as robot_circularity enforces
    if org_id is not None:
        query = query.where(Robot.owner_org_id == org_id)
    robots = list(reversed(session.execute(query.order_by(col(Robot.id).desc()).limit(limit)).all()))
    if not robots:
        return {"robots": [], "mci": []}
    ids = [int(rid) for rid, _ in robots]
    figures = metrics_service._products_mci(session, metrics_service._robot_members(session, ids), ids)
    labels, values = [], []
    if figures["result"] is not None:
        for k, (_, serial) in enumerate(robots):
            if figures["mass_kg"][k]:
                labels.append(serial)
                values.append(float(figures["MCI"][k]))
    return {"robots": labels, "mci": values}


#: How many Weibull fits the dashboard draws (the others are listed without their failure ages).
PLOTTED_FITS = 4


def reliability_fits(session: Session, *, settings: Settings | None, plotted: int = PLOTTED_FITS
                     ) -> list[dict[str, Any]]:
    """Weibull fits of every part type with enough failures (types without a Weibull fit are left out).

    The fits are the fleet models the reuse score keeps in ``reliability_model`` (refitted there whenever a failure
    is recorded); a part type without a stored model is fitted here and stored, as scoring would. The failure ages
    (``failures_h``) are gathered for the first ``plotted`` fits only, the ones the dashboard draws; the others carry
    ``failures_h`` None.
    """
    cfg = scores.config_for(settings)
    types = {pt.id: pt for pt in session.execute(select(PartType).order_by(PartType.part_number)).scalars()
             if pt.id is not None}
    if not types:
        return []
    models = scores._stored_models(session, types)
    missing = [i for i in types if i not in models]
    data: dict[int, gather.FleetData] = {}
    if missing:
        data = scores.fleet_data(session, cfg, missing)
        fitted = {i: scores.fit_fleet_model(types[i], data.get(i), cfg) for i in missing}
        scores._store_models(session, fitted.values())
        models |= fitted
    shown = [i for i in types if models[i].method == "weibull" and models[i].shape is not None
             and models[i].scale_h is not None]
    wanted = [i for i in shown[:plotted] if i not in data]
    if wanted:
        data |= scores.fleet_data(session, cfg, wanted)
    out = []
    for k, type_id in enumerate(shown):
        model = models[type_id]
        failures = data.get(type_id, gather.FleetData()).failures
        out.append({"part_number": types[type_id].part_number, "shape": model.shape, "scale_h": model.scale_h,
                    "b10_h": model.detail["b10_h"], "mttf_h": model.detail["mttf_h"],
                    "n_failures": model.n_failures, "n_censored": model.n_censored,
                    "failures_h": [h for _, h in sorted(failures, key=lambda x: x[1])] if k < plotted else None})
    return out


def center_dashboard(session: Session, *, viewer: User, start: datetime | None, end: datetime | None,
                     org_id: int | None, settings: Settings | None) -> dict[str, Any]:
    """Everything the center dashboard shows for the period and customer."""
    scope = customer_org_scope(viewer)
    if scope is not None:
        org_id = scope
    from refurb.consulting import service as consulting_service

    return {
        "kpis": metrics_service.kpis(session, viewer=viewer, start=start, end=end, org_id=org_id, settings=settings),
        "intake": intake_by_month(session, start=start, end=end, org_id=org_id),
        "flows": grade_flows(session, start=start, end=end, org_id=org_id),
        "rates": rates_by_part_type(session, start=start, end=end, org_id=org_id),
        "robot_mci": robot_mci(session, viewer=viewer, org_id=org_id),
        "reliability": reliability_fits(session, settings=settings),
        "sla": consulting_service.sla_compliance(session, viewer=viewer, start=start, end=end, org_id=org_id,
                                                 settings=settings),
    }
