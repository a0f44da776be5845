"""Reuse scores: gather each part's facts, score them vectorised, store a snapshot with its inputs when they change.

One code path serves every trigger: the part-event hook (one part, or every part of a type when a failure changed
the type's reliability model), a full recompute (CLI, API, benchmark) and the first read of a part. Inputs,
defaults and rules: ``docs/api.md (metrics)``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.sql import Select
from sqlmodel import Session, col
from sqlmodel import select as select_rows

from refurb.auth import User
from refurb.config import Settings, get_settings
from refurb.db import count_rows, utcnow
from refurb.errors import NotFoundError, ValidationError
from refurb.metrics import gather
from refurb.metrics.config import ScoringConfig, scoring_config
from refurb.metrics.models import PartScore, ReliabilityModel, ScoreConfig, ScoreTrigger
from refurb.parts import service as parts_service
from refurb.parts.models import EventType, Part, PartEvent, PartType
from refurb.scoring.reliability import conditional_reliability, fit_weibull
from refurb.scoring.reuse import FACTOR_NAMES, Grade, ReuseInputs, Verdict, VibrationZone, score_part, score_parts

log = logging.getLogger(__name__)

#: ReuseInputs fields, in the order they are hashed.
SCORING_FIELDS = ("grade", "finding_count", "test_margin", "test_passed", "vibration_zone", "survival_probability",
                  "reman_generation", "max_generations", "reman_cost", "new_price", "verdict")
_ZONES = tuple(str(z) for z in VibrationZone)
_GRADES = frozenset(str(g) for g in Grade)
_VERDICTS = frozenset(str(v) for v in Verdict)
_WRITE_CHUNK = 2000
_FACTORS = tuple(str(name) for name in FACTOR_NAMES)


# --- the scoring configuration, stored once per version -------------------------------------------------------


def dialect_insert(session: Session, table: Any) -> Any:
    """Return an INSERT construct with ON CONFLICT support for the session's database (SQLite or PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def ensure_config(session: Session, cfg: ScoringConfig) -> str:
    """Store the configuration under its version unless it is there already; return the version."""
    version = cfg.version
    if session.get(ScoreConfig, version) is None:
        stmt = dialect_insert(session, ScoreConfig).values(version=version, config=cfg.as_dict())
        session.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))
    return version


def config_for(settings: Settings | None) -> ScoringConfig:
    """Return the scoring configuration of these settings (the process settings when None)."""
    return scoring_config(settings or get_settings())


# --- fleet reliability models -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FleetModel:
    """The reliability model the score uses for a part type: a Weibull fit, the design-life fallback or none."""

    part_type_id: int
    method: str
    shape: float | None
    scale_h: float | None
    n_failures: int
    n_censored: int
    detail: dict[str, Any] = field(default_factory=dict)


def fit_fleet_model(part_type: PartType, data: gather.FleetData | None, cfg: ScoringConfig) -> FleetModel:
    """Fit the part type's Weibull, or fall back to the design life read as a B10 life, or give up."""
    assert part_type.id is not None
    data = data or gather.FleetData()
    try:
        fit = fit_weibull(data.failures_h, data.censored_h, min_failures=cfg.min_failures)
    except ValueError as exc:
        why = str(exc)
    else:
        return FleetModel(part_type.id, "weibull", fit.shape, fit.scale, fit.n_failures, fit.n_censored,
                          {"b10_h": fit.b10_h, "mttf_h": fit.mttf_h, "zero_hour_failures": data.zero_hour_failures})
    counts = (len(data.failures_h), len(data.censored_h))
    if part_type.design_life_h:
        shape = cfg.fallback_shape
        # design life read as a B10 (rating) life: B10 = eta (-ln 0.9)^(1/beta)
        scale = float(part_type.design_life_h) / (-math.log(0.9)) ** (1.0 / shape)
        return FleetModel(part_type.id, "design_life", shape, scale, *counts,
                          {"design_life_h": float(part_type.design_life_h), "why": why})
    return FleetModel(part_type.id, "none", None, None, *counts,
                      {"why": why + "; and the part type has no design life"})


def _store_models(session: Session, models: Iterable[FleetModel]) -> None:
    rows = [{"part_type_id": m.part_type_id, "method": m.method, "shape": m.shape, "scale_h": m.scale_h,
             "n_failures": m.n_failures, "n_censored": m.n_censored, "detail": m.detail,
             "fitted_at": utcnow()} for m in models]
    if not rows:
        return
    stmt = dialect_insert(session, ReliabilityModel)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["part_type_id"],
        set_={name: getattr(stmt.excluded, name) for name in
              ("method", "shape", "scale_h", "n_failures", "n_censored", "detail", "fitted_at")}), rows)


def _stored_models(session: Session, part_type_ids: Iterable[int]) -> dict[int, FleetModel]:
    rows = session.exec(select_rows(ReliabilityModel)
                        .where(col(ReliabilityModel.part_type_id).in_(list(part_type_ids)))
                        .execution_options(populate_existing=True)).all()
    return {r.part_type_id: FleetModel(r.part_type_id, r.method, r.shape, r.scale_h, r.n_failures, r.n_censored,
                                       dict(r.detail)) for r in rows}


def fleet_data(session: Session, cfg: ScoringConfig, part_type_ids: list[int],
               facts: gather.PartFacts | None = None) -> dict[int, gather.FleetData]:
    """Failure and censoring ages of these part types (parts' hours from ``facts`` when it covers them)."""
    if facts is None or not set(np.unique(facts.part_type_id).tolist()) >= set(part_type_ids):
        rows = session.execute(select(col(Part.id), col(Part.part_type_id), col(Part.operating_hours))
                               .where(col(Part.part_type_id).in_(part_type_ids))).all()
        part_ids = np.array([r[0] for r in rows], dtype=np.int64)
        type_ids = np.array([r[1] for r in rows], dtype=np.int64)
        hours = np.array([r[2] or 0.0 for r in rows], dtype=np.float64)
    else:
        mask = np.isin(facts.part_type_id, part_type_ids)
        part_ids, type_ids, hours = facts.ids[mask], facts.part_type_id[mask], facts.operating_hours[mask]
    failures = gather.gather_failures(session, gather.part_ids_of(part_type_ids=part_type_ids),
                                      is_failure_reason=cfg.is_failure_reason)
    return gather.fleet_data(part_ids, type_ids, hours, failures)


def refit_fleet_models(session: Session, cfg: ScoringConfig, part_types: dict[int, PartType],
                       facts: gather.PartFacts | None = None, timings: dict[str, float] | None = None
                       ) -> dict[int, FleetModel]:
    """Refit the reliability models of these part types from their parts and failures, and store them."""
    timings = {} if timings is None else timings
    started = time.perf_counter()
    ids = sorted(part_types)
    data = fleet_data(session, cfg, ids, facts)
    timings["db_read"] = timings.get("db_read", 0.0) + time.perf_counter() - started
    started = time.perf_counter()
    models = {i: fit_fleet_model(part_types[i], data.get(i), cfg) for i in ids}
    timings["maths"] = timings.get("maths", 0.0) + time.perf_counter() - started
    started = time.perf_counter()
    _store_models(session, models.values())
    timings["db_write"] = timings.get("db_write", 0.0) + time.perf_counter() - started
    return models


# --- test evidence ----------------------------------------------------------------------------------------------


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def result_margin(result: dict[str, Any], test_limits: dict[str, Any]) -> float | None:
    """Return a check's margin to its limit in [0, 1] (0 at the limit, 1 at nominal), or None if unknowable.

    A recorded ``margin`` wins. Otherwise, for an upper limit (``<=``, ``<``, the default) the margin is
    ``(limit - measured) / (limit - nominal)`` with nominal 0 unless the result or the part type's
    ``test_limits[check]["nominal"]`` gives one; for a lower limit (``>=``, ``>``) it is
    ``(measured - limit) / (nominal - limit)`` and needs a nominal (a run-in hour count has no meaningful margin).
    """
    recorded = gather._number(result.get("margin"))
    if recorded is not None:
        return _clip01(recorded)
    measured, limit = gather._number(result.get("measured")), gather._number(result.get("limit"))
    if measured is None or limit is None:
        return None
    nominal = gather._number(result.get("nominal"))
    spec = test_limits.get(str(result.get("check"))) if isinstance(test_limits, dict) else None
    if nominal is None and isinstance(spec, dict):
        nominal = gather._number(spec.get("nominal"))
    comparison = str(result.get("comparison") or "<=")
    if comparison in ("<=", "<"):
        span = limit - (nominal or 0.0)
        return _clip01((limit - measured) / span) if span > 0 else None
    if comparison in (">=", ">") and nominal is not None:
        span = nominal - limit
        return _clip01((measured - limit) / span) if span > 0 else None
    return None


def _zone_of(result: dict[str, Any]) -> Any:
    """Return a check's ISO 10816 zone: ``vibration_zone``, or ``zone`` on a telemetry vibration-zone check."""
    if result.get("vibration_zone") is not None:
        return result["vibration_zone"]
    return result.get("zone") if result.get("check_type") == "vibration_zone" else None


@dataclass(frozen=True)
class TestEvidence:
    passed: bool | None
    margin: float | None
    zone: str | None
    margins: list[dict[str, Any]]
    worst_check: str | None


def test_evidence(details: dict[str, Any], test_limits: dict[str, Any]) -> TestEvidence:
    """Read a ``tested`` event: the pass flag, the worst margin over its checks and the worst vibration zone."""
    passed = details.get("passed") if isinstance(details.get("passed"), bool) else None
    results = [r for r in details.get("results") or [] if isinstance(r, dict)]
    zones = [z for z in [details.get("vibration_zone"), *(_zone_of(r) for r in results)] if z in _ZONES]
    margins: list[dict[str, Any]] = []
    for r in results:
        m = result_margin(r, test_limits)
        if m is not None:
            margins.append({"check": str(r.get("check") or r.get("name") or "?"), "margin": m})
    worst = min(margins, key=lambda x: x["margin"]) if margins else None
    return TestEvidence(passed=passed, margin=worst["margin"] if worst else None,
                        zone=max(zones, key=_ZONES.index) if zones else None, margins=margins,
                        worst_check=worst["check"] if worst else None)


# --- gathering inputs and scoring ---------------------------------------------------------------------------------


@dataclass
class ScoredParts:
    """Per-part scoring inputs and results for a set of parts (aligned with ``facts.ids``); ``notes`` keeps what
    the stored context needs, turned into JSON only for the parts whose snapshot is written."""

    facts: gather.PartFacts
    columns: dict[str, list[Any]]
    notes: list[dict[str, Any]]
    scores: Any  # refurb.scoring.reuse.ReuseScores
    hashes: list[str]


def _verdict(status: str, quarantined: bool, event: tuple[int, str, dict[str, Any]] | None
             ) -> tuple[str | None, dict[str, Any] | None]:
    """Return the verdict that applies now and where it came from (docs/api.md (metrics): verdicts)."""
    end = gather.terminal(status)
    if end is not None:
        return end, {"from": "status", "status": status}
    source = None if event is None else {"from": "event", "seq": event[0], "type": event[1],
                                         "ticket_id": event[2].get("ticket_id")}
    if quarantined:
        held_by_event = source is not None and source["type"] == EventType.QUARANTINED
        return "quarantine", source if held_by_event else {"from": "status", "status": "quarantined"}
    if event is None:
        return None, None
    _, type_, details = event
    verdict = details.get("verdict")
    if verdict in _VERDICTS:
        return str(verdict), source
    if type_ == EventType.RELEASED:
        return "release", source
    return None, None


def _hash(values: tuple[Any, ...], version: str) -> str:
    text = "|".join(f"{v:.12g}" if isinstance(v, float) else str(v) for v in values) + "|" + version
    return hashlib.sha256(text.encode()).hexdigest()


def score_facts(facts: gather.PartFacts, part_types: dict[int, PartType], models: dict[int, FleetModel],
                cfg: ScoringConfig, timings: dict[str, float]) -> ScoredParts:
    """Turn gathered facts into ReuseInputs columns, score them with ``score_parts`` and hash the inputs."""
    started = time.perf_counter()
    n = len(facts)
    columns: dict[str, list[Any]] = {name: [None] * n for name in SCORING_FIELDS}
    notes: list[dict[str, Any]] = [{} for _ in range(n)]
    costs = {type_id: cfg.cost_fraction(str(pt.category)) for type_id, pt in part_types.items()}
    type_ids = facts.part_type_id.tolist()
    reman = facts.reman_count.tolist()
    quarantined = facts.quarantined.tolist()
    for i, part_id in enumerate(facts.ids.tolist()):
        pt = part_types[type_ids[i]]
        note = notes[i]
        inspected = facts.inspected.get(part_id)
        if inspected is not None:
            details = inspected[1]
            columns["grade"][i] = details["grade"] if details["grade"] in _GRADES else None
            columns["finding_count"][i] = details["finding_count"]
            note["inspected_seq"] = inspected[0]
        else:
            columns["finding_count"][i] = 0
        tested = facts.tested.get(part_id)
        if tested is not None:
            evidence = test_evidence(tested[1], pt.test_limits or {})
            columns["test_passed"][i], columns["test_margin"][i] = evidence.passed, evidence.margin
            columns["vibration_zone"][i] = evidence.zone
            note["test"] = (tested[0], tested[1].get("test_run_id"), evidence)
        columns["reman_generation"][i] = reman[i]
        columns["max_generations"][i] = max(1, int(pt.max_reman_generations))
        price = float(pt.new_price) if pt.new_price else None
        columns["new_price"][i] = price
        recorded = facts.recorded_cost.get(part_id)
        if recorded is not None:
            columns["reman_cost"][i] = recorded
            note["cost"] = "recorded"
        elif price is not None:
            columns["reman_cost"][i] = price * costs[type_ids[i]]
            note["cost"] = "default_fraction"
        verdict, source = _verdict(facts.status[i], quarantined[i], facts.verdict_event.get(part_id))
        columns["verdict"][i] = verdict
        if source is not None:
            note["verdict_source"] = source
    timings["build"] = timings.get("build", 0.0) + time.perf_counter() - started

    started = time.perf_counter()
    survival = np.full(n, np.nan)
    for type_id in np.unique(facts.part_type_id).tolist():
        model = models.get(int(type_id))
        if model is None or model.shape is None or model.scale_h is None:
            continue
        rows = facts.part_type_id == type_id
        mission = cfg.warranty_h(str(part_types[int(type_id)].category))
        survival[rows] = conditional_reliability(facts.operating_hours[rows], mission, model.shape, model.scale_h)

    def floats(name: str) -> Any:
        return np.array([np.nan if v is None else v for v in columns[name]], dtype=np.float64)

    scores = score_parts(
        grade=np.array(columns["grade"], dtype=object),
        finding_count=np.array(columns["finding_count"], dtype=np.int64),
        test_margin=floats("test_margin"),
        test_passed=floats("test_passed"),
        vibration_zone=np.array(columns["vibration_zone"], dtype=object),
        survival_probability=survival,
        reman_generation=np.array(columns["reman_generation"], dtype=np.int64),
        max_generations=np.array(columns["max_generations"], dtype=np.int64),
        reman_cost=floats("reman_cost"),
        new_price=floats("new_price"),
        verdict=np.array(columns["verdict"], dtype=object),
        weights=cfg.weights,
        thresholds=cfg.thresholds,
    ) if n else None
    timings["maths"] = timings.get("maths", 0.0) + time.perf_counter() - started

    started = time.perf_counter()
    columns["survival_probability"] = [None if math.isnan(v) else v for v in survival.tolist()]
    version = cfg.version
    hashes = [_hash(row, version) for row in zip(*(columns[name] for name in SCORING_FIELDS), strict=True)]
    timings["build"] += time.perf_counter() - started
    return ScoredParts(facts, columns, notes, scores, hashes)


def _context(scored: ScoredParts, i: int, part_types: dict[int, PartType], models: dict[int, FleetModel],
             cfg: ScoringConfig) -> dict[str, Any]:
    """The stored explanation context of one part: where each input came from."""
    facts = scored.facts
    type_id = int(facts.part_type_id[i])
    category = str(part_types[type_id].category)
    note = scored.notes[i]
    ctx: dict[str, Any] = {"cycle_start_seq": int(facts.cycle_start[i])}
    if "inspected_seq" in note:
        ctx["inspected_seq"] = note["inspected_seq"]
    if "test" in note:
        seq, run_id, evidence = note["test"]
        ctx["test"] = {"seq": seq, "test_run_id": run_id, "margins": evidence.margins,
                       "worst_check": evidence.worst_check}
    if note.get("cost") == "recorded":
        ctx["cost"] = {"source": "recorded", "category": category}
    elif note.get("cost") == "default_fraction":
        ctx["cost"] = {"source": "default_fraction", "fraction": cfg.cost_fraction(category), "category": category}
    if "verdict_source" in note:
        ctx["verdict_source"] = note["verdict_source"]
    model = models.get(type_id)
    if model is not None:
        ctx["reliability"] = {"method": model.method, "shape": model.shape, "scale_h": model.scale_h,
                              "n_failures": model.n_failures, "n_censored": model.n_censored,
                              "age_h": float(facts.operating_hours[i]), "mission_h": cfg.warranty_h(category)}
    ctx["event_count"] = int(facts.event_count[i])
    ctx["chain_head"] = facts.chain_head[i]
    return ctx


@dataclass
class RecomputeStats:
    parts: int = 0
    changed: int = 0
    part_types_fitted: int = 0
    config_version: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def _part_types(session: Session, ids: Iterable[int]) -> dict[int, PartType]:
    return {pt.id: pt for pt in session.exec(select_rows(PartType).where(col(PartType.id).in_(sorted(set(ids)))))
            if pt.id is not None}


def recompute_scores(session: Session, *, scope: Select[Any], cfg: ScoringConfig, trigger: ScoreTrigger,
                     refit: bool = False, trigger_by_part: dict[int, ScoreTrigger] | None = None,
                     event: PartEvent | None = None) -> RecomputeStats:
    """Score every part in ``scope``; store a new current snapshot for each part whose inputs changed.

    ``refit`` refits the reliability models of the part types involved (otherwise the stored models are used and
    only missing ones are fitted). Timings (seconds) are split into ``db_read``, ``maths`` (model fits, survival
    probabilities and ``score_parts``), ``build`` (Python glue: JSON of events, inputs, hashes) and ``db_write``.
    """
    stats = RecomputeStats(config_version=cfg.version)
    timings = stats.timings
    started = time.perf_counter()
    facts = gather.gather_part_facts(session, scope)
    stats.parts = len(facts)
    if not stats.parts:
        return stats
    part_types = _part_types(session, facts.part_type_id.tolist())
    models = {} if refit else _stored_models(session, part_types)
    missing = {i: part_types[i] for i in part_types if i not in models}
    timings["db_read"] = timings.get("db_read", 0.0) + time.perf_counter() - started
    if missing:
        models |= refit_fleet_models(session, cfg, missing, facts, timings)
        stats.part_types_fitted = len(missing)
    scored = score_facts(facts, part_types, models, cfg, timings)

    started = time.perf_counter()
    current = dict(session.connection().execute(
        select(col(PartScore.part_id), col(PartScore.inputs_hash))
        .where(col(PartScore.is_current), col(PartScore.part_id).in_(scope))).all())
    timings["db_read"] += time.perf_counter() - started

    started = time.perf_counter()
    ids = facts.ids.tolist()
    changed = [i for i, part_id in enumerate(ids) if current.get(part_id) != scored.hashes[i]]
    stats.changed = len(changed)
    if not changed:
        timings["build"] += time.perf_counter() - started
        return stats
    version = ensure_config(session, cfg)
    now = utcnow()
    s = scored.scores
    score, raw, recommendation = s.score.tolist(), s.raw_score.tolist(), s.recommendation.tolist()
    hold, capped = s.hold.tolist(), s.capped.tolist()
    subscores, contributions = s.subscores.tolist(), s.contributions.tolist()
    weights = cfg.weights.as_tuple()
    trigger_event = None if event is None else {"seq": event.seq, "type": str(event.type),
                                                "part_id": event.part_id}
    by_part = trigger_by_part or {}
    rows = []
    for i in changed:
        part_id = ids[i]
        ctx = _context(scored, i, part_types, models, cfg)
        if trigger_event is not None:
            ctx["trigger_event"] = trigger_event
        rows.append({
            "part_id": part_id,
            "score": score[i],
            "raw_score": raw[i],
            "recommendation": recommendation[i],
            "hold": hold[i],
            "capped": capped[i],
            "factors": [{"name": name, "weight": w, "subscore": sub, "contribution": con}
                        for name, w, sub, con in zip(_FACTORS, weights, subscores[i], contributions[i], strict=True)],
            "inputs": {"scoring": {name: scored.columns[name][i] for name in SCORING_FIELDS}, "context": ctx},
            "inputs_hash": scored.hashes[i],
            "config_version": version,
            "trigger": by_part.get(part_id, trigger),
            "is_current": True,
            "computed_at": now,
        })
    timings["build"] += time.perf_counter() - started

    started = time.perf_counter()
    changed_ids = [ids[i] for i in changed]
    for k in range(0, len(changed_ids), _WRITE_CHUNK):
        session.execute(update(PartScore).where(col(PartScore.is_current),
                                                col(PartScore.part_id).in_(changed_ids[k:k + _WRITE_CHUNK]))
                        .values(is_current=False).execution_options(synchronize_session=False))
    for k in range(0, len(rows), _WRITE_CHUNK):
        session.execute(insert(PartScore.__table__), rows[k:k + _WRITE_CHUNK])  # type: ignore[attr-defined]
    timings["db_write"] = timings.get("db_write", 0.0) + time.perf_counter() - started
    return stats


# --- entry points -------------------------------------------------------------------------------------------------


def recompute_all(session: Session, *, settings: Settings | None = None) -> RecomputeStats:
    """Refit every part type's reliability model and rescore every part (vectorised)."""
    cfg = config_for(settings)
    return recompute_scores(session, scope=gather.part_ids_of(), cfg=cfg, trigger=ScoreTrigger.RECOMPUTE,
                            refit=True)


def recompute_stale(session: Session, *, settings: Settings | None = None) -> RecomputeStats:
    """Score the parts that have no current snapshot under the current configuration (stored models reused)."""
    cfg = config_for(settings)
    fresh = select(col(PartScore.part_id)).where(col(PartScore.is_current),
                                                 col(PartScore.config_version) == cfg.version)
    scope = select(col(Part.id)).where(col(Part.id).not_in(fresh))
    return recompute_scores(session, scope=scope, cfg=cfg, trigger=ScoreTrigger.RECOMPUTE)


def _failure_types(session: Session, part: Part, event: PartEvent, cfg: ScoringConfig) -> set[int]:
    """Return the part types whose reliability model this event changes (it records a failure), if any."""
    details = event.details or {}
    types: set[int] = set()
    if gather.failure_of_event(str(event.type), details, is_failure_reason=cfg.is_failure_reason):
        types.add(part.part_type_id)
    replaced = [c for c in details.get("replaced_part_ids") or [] if isinstance(c, int)]
    if event.type == EventType.REPAIRED and replaced:
        types |= {int(t) for (t,) in session.execute(select(col(Part.part_type_id))
                                                    .where(col(Part.id).in_(replaced)))}
    return types


def on_part_event(session: Session, part: Part, event: PartEvent, *, settings: Settings | None = None) -> None:
    """Rescore after a part event (called by the parts service at the end of ``record_event``).

    A failure event refits its part type's reliability model and, when the model moved, rescores every part of
    that type (their survival input changed); otherwise only this part is rescored. Stored data the scoring maths
    refuses, or an inconsistent scoring configuration, is logged and never blocks the event itself (the score is
    then brought up to date by ``refurb score recompute``); database errors propagate.
    """
    assert part.id is not None
    try:
        cfg = config_for(settings)
        types = _failure_types(session, part, event, cfg)
        if types:
            before = _stored_models(session, types)
            after = refit_fleet_models(session, cfg, _part_types(session, types))
            moved = [t for t, m in after.items() if before.get(t) is None or
                     (before[t].method, before[t].shape, before[t].scale_h) != (m.method, m.shape, m.scale_h)]
            if moved:
                recompute_scores(session, scope=gather.part_ids_of(part_type_ids=moved), cfg=cfg,
                                 trigger=ScoreTrigger.FLEET_MODEL, trigger_by_part={part.id: ScoreTrigger.EVENT},
                                 event=event)
                if part.part_type_id in moved:
                    return
        recompute_scores(session, scope=gather.part_ids_of(part_ids=[part.id]), cfg=cfg,
                         trigger=ScoreTrigger.EVENT, event=event)
    except (ValueError, ValidationError):
        log.exception("reuse score of part %s not recomputed after event %s", part.id, event.seq)


def current_snapshot(session: Session, part_id: int) -> PartScore | None:
    """Return the part's current score snapshot, or None."""
    return session.exec(select_rows(PartScore).where(col(PartScore.part_id) == part_id, col(PartScore.is_current))
                        .execution_options(populate_existing=True)).first()


def explain(session: Session, snapshot: PartScore) -> dict[str, Any]:
    """Shape a snapshot for the API: stored numbers, plus words regenerated from its stored inputs and config."""
    stored = session.get(ScoreConfig, snapshot.config_version)
    cfg = ScoringConfig.from_dict(stored.config) if stored is not None else None
    scoring = dict(snapshot.inputs.get("scoring", {}))
    context = dict(snapshot.inputs.get("context", {}))
    kwargs = {k: v for k, v in scoring.items() if v is not None}
    result = score_part(ReuseInputs(**kwargs), *((cfg.weights, cfg.thresholds) if cfg else ()))
    notes = {
        "test": (f"; worst margin from check '{context['test']['worst_check']}'"
                 if context.get("test", {}).get("worst_check") else ""),
        "reliability": _reliability_note(context.get("reliability")),
        "economics": _cost_note(context.get("cost")),
    }
    by_name = {f["name"]: f for f in snapshot.factors}
    factors = []
    for f in result.factors:
        saved = by_name.get(str(f.name), {})
        factors.append({"name": str(f.name), "value": f.value, "weight": saved.get("weight", f.weight),
                        "subscore": saved.get("subscore", f.subscore),
                        "contribution": saved.get("contribution", f.contribution), "missing": f.missing,
                        "explanation": f.explanation + notes.get(str(f.name), "")})
    reasons = list(result.reasons)
    source = context.get("verdict_source")
    if scoring.get("verdict") and source:
        where = (f"event {source['seq']} ({source['type']})" if source.get("from") == "event"
                 else f"part status {source.get('status')}")
        ticket = f", ticket {source['ticket_id']}" if source.get("ticket_id") else ""
        reasons.append(f"verdict {scoring['verdict']} taken from {where}{ticket}")
    return {
        "part_id": snapshot.part_id, "score": snapshot.score, "raw_score": snapshot.raw_score,
        "recommendation": str(snapshot.recommendation), "hold": snapshot.hold, "capped": snapshot.capped,
        "reasons": reasons, "factors": factors, "inputs": snapshot.inputs, "computed_at": snapshot.computed_at,
        "trigger": str(snapshot.trigger), "config_version": snapshot.config_version, "snapshot_id": snapshot.id,
    }


def _reliability_note(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    if info.get("method") == "none":
        return "; no reliability model for this part type (too few failures and no design life)"
    model = "fleet Weibull fit" if info.get("method") == "weibull" else "design-life fallback (design life as B10)"
    return (f"; R({info['mission_h']:.0f} h | {info['age_h']:.0f} h) from the {model}, shape {info['shape']:.3g}, "
            f"scale {info['scale_h']:.4g} h")


def _cost_note(info: dict[str, Any] | None) -> str:
    if not info:
        return ""
    if info.get("source") == "recorded":
        return "; cost = sum of costs recorded on this visit's events"
    return f"; cost estimated as {info['fraction']:.0%} of the new price (default for {info['category']})"


def part_score(session: Session, part_id: int, *, viewer: User | None, settings: Settings | None = None
               ) -> dict[str, Any]:
    """Return the part's current reuse score with its reasons, computing it first if it has none under the
    current configuration."""
    parts_service.get_part(session, part_id, viewer=viewer)
    cfg = config_for(settings)
    snapshot = current_snapshot(session, part_id)
    if snapshot is None or snapshot.config_version != cfg.version:
        parts_service.get_part(session, part_id, for_update=True)  # one reader computes, the other waits
        recompute_scores(session, scope=gather.part_ids_of(part_ids=[part_id]), cfg=cfg, trigger=ScoreTrigger.READ)
        snapshot = current_snapshot(session, part_id)
    if snapshot is None:
        raise NotFoundError(f"part {part_id} has no score")
    return explain(session, snapshot)


def score_history(session: Session, part_id: int, *, viewer: User | None, offset: int = 0, limit: int = 100
                  ) -> tuple[list[dict[str, Any]], int]:
    """Return a page of the part's score snapshots, newest first, each explained."""
    parts_service.get_part(session, part_id, viewer=viewer)
    query = select_rows(PartScore).where(col(PartScore.part_id) == part_id)
    total = count_rows(session, query)
    rows = session.exec(query.order_by(col(PartScore.id).desc()).offset(offset).limit(limit)
                        .execution_options(populate_existing=True)).all()
    return [explain(session, r) for r in rows], total
