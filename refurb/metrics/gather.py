"""Aggregate queries that feed the metrics services: a fixed handful of SQL statements whatever the number of
parts (never one query per part). Scopes are SQL subqueries of part ids, so one code path serves a single part
(the event hook), one part type (after a failure) and the whole center (recompute, benchmark)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import String, and_, false, func, or_, select, type_coerce
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from refurb.parts.models import EventType, Part, PartEvent, PartStatus

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Dispositions that end a part's life; with a failure reason they count as failures (docs/api.md (metrics)).
END_OF_LIFE = ("scrap", "recycle")
#: Verdicts that count as failures of the part they land on (consulting records them as part events).
FAILURE_VERDICTS = ("scrap", "require_replacement")


#: Longest IN (...) list sent in one statement (PostgreSQL allows at most 65,535 bind parameters).
IN_CHUNK = 5000


def chunks(values: Iterable[int], size: int = IN_CHUNK) -> Iterator[list[int]]:
    """Yield sorted ids in lists short enough for one IN (...) clause."""
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start:start + size]


def part_ids_of(*, part_ids: Iterable[int] | None = None, part_type_ids: Iterable[int] | None = None) -> Select[Any]:
    """Return a subquery selecting part ids: the given ids, the parts of the given types, or every part."""
    query = select(col(Part.id))
    if part_ids is not None:
        query = query.where(col(Part.id).in_(list(part_ids)))
    if part_type_ids is not None:
        query = query.where(col(Part.part_type_id).in_(list(part_type_ids)))
    return query


def _text(column: Any) -> Any:
    """Read an enum column as plain text (skips building 10^5 enum members on bulk reads; StrEnums compare equal)."""
    return type_coerce(col(column), String)


def _event_detail(key: str) -> Any:
    return col(PartEvent.details)[key].as_string()


def _number(value: Any) -> float | None:
    """Return a finite float from a JSON value (number or numeric text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


@dataclass
class PartFacts:
    """What the reuse score needs about a set of parts, one row per part (arrays aligned on ``ids``).

    Event-derived facts are restricted to the part's current intake cycle: events after its latest ``received``
    event (a returned core is judged on this visit's inspection, tests, verdicts and costs, not the last one's).
    ``inspected`` maps part id to ``(seq, {"grade", "finding_count"})``, ``tested`` to ``(seq, details)``,
    ``verdict_event`` to ``(seq, type, {"verdict", "ticket_id"})`` and ``recorded_cost`` to the visit's cost sum.
    """

    ids: IntArray
    part_type_id: IntArray
    operating_hours: FloatArray
    reman_count: IntArray
    quarantined: npt.NDArray[np.bool_]
    status: list[str]
    event_count: IntArray
    chain_head: list[str | None]
    cycle_start: IntArray
    inspected: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    tested: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    verdict_event: dict[int, tuple[int, str, dict[str, Any]]] = field(default_factory=dict)
    recorded_cost: dict[int, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.size)


def gather_part_facts(session: Session, scope: Select[Any]) -> PartFacts:
    """Load the scoring facts of every part in ``scope`` with six aggregate queries (Core rows: no ORM overhead)."""
    conn = session.connection()
    rows = conn.execute(
        select(col(Part.id), col(Part.part_type_id), col(Part.operating_hours), col(Part.reman_count),
               col(Part.quarantined), _text(Part.status), col(Part.event_count), col(Part.chain_head))
        .where(col(Part.id).in_(scope)).order_by(col(Part.id))
    ).all()
    n = len(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    facts = PartFacts(
        ids=ids,
        part_type_id=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        operating_hours=np.fromiter((r[2] or 0.0 for r in rows), dtype=np.float64, count=n),
        reman_count=np.fromiter((r[3] or 0 for r in rows), dtype=np.int64, count=n),
        quarantined=np.fromiter((bool(r[4]) for r in rows), dtype=np.bool_, count=n),
        status=[str(r[5]) for r in rows],
        event_count=np.fromiter((r[6] or 0 for r in rows), dtype=np.int64, count=n),
        chain_head=[r[7] for r in rows],
        cycle_start=np.zeros(n, dtype=np.int64),
    )
    if n == 0:
        return facts
    in_scope = col(PartEvent.part_id).in_(scope)
    position = {int(pid): i for i, pid in enumerate(ids)}

    starts = conn.execute(
        select(col(PartEvent.part_id), func.max(col(PartEvent.seq)))
        .where(in_scope, col(PartEvent.type) == EventType.RECEIVED).group_by(col(PartEvent.part_id))
    ).all()
    for part_id, seq in starts:
        facts.cycle_start[position[part_id]] = seq
    start_of = {int(pid): int(facts.cycle_start[i]) for pid, i in position.items()}

    # the latest inspection and the latest test of each part; only test details are decoded in Python
    def latest_of(kind: EventType) -> Any:
        return (select(col(PartEvent.part_id).label("part_id"), func.max(col(PartEvent.seq)).label("seq"))
                .where(in_scope, col(PartEvent.type) == kind).group_by(col(PartEvent.part_id)).subquery())

    def joined(latest: Any) -> Any:
        return and_(col(PartEvent.part_id) == latest.c.part_id, col(PartEvent.seq) == latest.c.seq)

    inspected = latest_of(EventType.INSPECTED)
    for part_id, seq, grade, findings in conn.execute(
        select(col(PartEvent.part_id), col(PartEvent.seq), _event_detail("grade"),
               func.json_array_length(col(PartEvent.details)["findings"]))
        .join(inspected, joined(inspected))
    ):
        if seq > start_of[part_id]:  # else from an earlier visit
            facts.inspected[part_id] = (seq, {"grade": grade, "finding_count": int(findings or 0)})
    tested = latest_of(EventType.TESTED)
    for part_id, seq, details in conn.execute(
        select(col(PartEvent.part_id), col(PartEvent.seq), col(PartEvent.details)).join(tested, joined(tested))
    ):
        if seq > start_of[part_id]:
            facts.tested[part_id] = (seq, details or {})

    # the latest event that carries a verdict (consulting writes details.verdict) or a hold / end-of-life decision
    verdict_kind = or_(
        _event_detail("verdict").is_not(None),
        col(PartEvent.type).in_([EventType.QUARANTINED, EventType.RELEASED]),
        and_(col(PartEvent.type) == EventType.DISPOSITIONED, _event_detail("disposition").in_(END_OF_LIFE)),
    )
    last_verdict = (
        select(col(PartEvent.part_id).label("part_id"), func.max(col(PartEvent.seq)).label("seq"))
        .where(in_scope, verdict_kind).group_by(col(PartEvent.part_id)).subquery()
    )
    for part_id, type_, seq, verdict, ticket_id in conn.execute(
        select(col(PartEvent.part_id), _text(PartEvent.type), col(PartEvent.seq), _event_detail("verdict"),
               _event_detail("ticket_id"))
        .join(last_verdict, joined(last_verdict))
    ):
        if seq > start_of[part_id]:
            ticket = _number(ticket_id)
            facts.verdict_event[part_id] = (seq, str(type_), {"verdict": verdict,
                                                              "ticket_id": None if ticket is None else int(ticket)})

    # recorded remanufacturing costs of this visit (event detail "cost", in the currency of new_price)
    for part_id, seq, cost in conn.execute(
        select(col(PartEvent.part_id), col(PartEvent.seq), _event_detail("cost"))
        .where(in_scope, _event_detail("cost").is_not(None))
    ):
        amount = _number(cost)
        if amount is not None and amount >= 0 and seq > start_of[part_id]:
            facts.recorded_cost[part_id] = facts.recorded_cost.get(part_id, 0.0) + amount
    return facts


# --- failures for the fleet reliability model -------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """The first failure of one part: when (operating hours, None if unrecorded) and why."""

    part_id: int
    hours: float | None
    reason: str
    occurred_at: datetime
    event_part_id: int
    event_seq: int


def failure_of_event(type_: str, details: dict[str, Any], *, is_failure_reason: Any) -> str | None:
    """Return why an event on a part is a failure of that part, or None (the rule in docs/api.md (metrics))."""
    if type_ == EventType.TESTED and details.get("passed") is False:
        return "failed test" + (f" (test run {details['test_run_id']})" if details.get("test_run_id") else "")
    if type_ == EventType.DISPOSITIONED and details.get("disposition") in END_OF_LIFE:
        verdict = details.get("verdict")
        if verdict is not None:
            return f"verdict {verdict}" if verdict in FAILURE_VERDICTS else None
        reason = details.get("reason")
        if is_failure_reason(reason):
            return f"dispositioned {details['disposition']}" + (f": {reason}" if reason else "")
    return None


def gather_failures(session: Session, scope: Select[Any], *, is_failure_reason: Any) -> dict[int, Failure]:
    """Return the first failure of every part in ``scope`` that has one, from two queries.

    Failures are failed ``tested`` events, ``dispositioned`` scrap/recycle events for a failure reason (or by a
    scrap / require_replacement verdict), and being replaced during a repair of the parent part
    (``repaired.replaced_part_ids``). The hours are the event's ``operating_hours`` detail when recorded.
    """
    candidates = or_(
        and_(col(PartEvent.type) == EventType.TESTED, col(PartEvent.details)["passed"].as_boolean() == false()),
        and_(col(PartEvent.type) == EventType.DISPOSITIONED, _event_detail("disposition").in_(END_OF_LIFE)),
    )
    found: dict[int, Failure] = {}

    def keep(failure: Failure) -> None:
        known = found.get(failure.part_id)
        if known is None or (failure.occurred_at, failure.event_seq) < (known.occurred_at, known.event_seq):
            found[failure.part_id] = failure

    keys = ("disposition", "verdict", "reason", "test_run_id", "operating_hours")
    conn = session.connection()
    for part_id, seq, type_, at, *values in conn.execute(
        select(col(PartEvent.part_id), col(PartEvent.seq), _text(PartEvent.type), col(PartEvent.occurred_at),
               *(_event_detail(key) for key in keys))
        .where(col(PartEvent.part_id).in_(scope), candidates)
    ):
        # only the keys the rule reads are extracted in SQL: test details (results) are never decoded here
        details: dict[str, Any] = {k: v for k, v in zip(keys, values, strict=True) if v is not None}
        if type_ == EventType.TESTED:
            details["passed"] = False  # the query selected failed tests only
        reason = failure_of_event(str(type_), details, is_failure_reason=is_failure_reason)
        if reason is not None:
            keep(Failure(part_id, _number(details.get("operating_hours")), reason, at, part_id, seq))

    # replaced during a repair: the event sits on the parent, which may be of another part type
    replaced = conn.execute(
        select(col(PartEvent.part_id), col(PartEvent.seq), col(PartEvent.details), col(PartEvent.occurred_at))
        .where(col(PartEvent.type) == EventType.REPAIRED, _event_detail("replaced_part_ids").is_not(None))
    ).all()
    child_ids = {int(c) for _, _, details, _ in replaced for c in (details or {}).get("replaced_part_ids", [])
                 if isinstance(c, int)}
    if child_ids:
        wanted = {int(i or 0) for ids in chunks(child_ids) for (i,) in conn.execute(
            select(col(Part.id)).where(col(Part.id).in_(scope), col(Part.id).in_(ids)))}
        for parent_id, seq, details, at in replaced:
            for child in (details or {}).get("replaced_part_ids", []):
                if child in wanted:
                    keep(Failure(child, None, f"replaced during repair of part {parent_id}", at, parent_id, seq))
    return found


@dataclass
class FleetData:
    """Failure ages and censoring ages of one part type, ready for ``fit_weibull``."""

    failures_h: list[float] = field(default_factory=list)
    censored_h: list[float] = field(default_factory=list)
    zero_hour_failures: int = 0
    failures: list[tuple[Failure, float]] = field(default_factory=list)


def fleet_data(part_ids: IntArray, part_type_ids: IntArray, hours: FloatArray,
               failures: dict[int, Failure]) -> dict[int, FleetData]:
    """Split parts into failures (age at first failure) and right-censored units (current age), per part type.

    A failure without recorded hours takes the part's current operating hours. Failures at 0 h (dead on arrival)
    cannot enter a Weibull on operating hours and are counted apart.
    """
    out: dict[int, FleetData] = {}
    for part_id, type_id, age in zip(part_ids.tolist(), part_type_ids.tolist(), hours.tolist(), strict=True):
        data = out.setdefault(int(type_id), FleetData())
        failure = failures.get(int(part_id))
        if failure is None:
            data.censored_h.append(float(age))
            continue
        at = failure.hours if failure.hours is not None else float(age)
        data.failures.append((failure, at))
        if at > 0:
            data.failures_h.append(at)
        else:
            data.zero_hour_failures += 1
    return out


def terminal(status: str) -> str | None:
    """Return 'scrap' or 'recycle' for a part whose life has ended, else None."""
    if status == PartStatus.SCRAPPED:
        return "scrap"
    if status == PartStatus.RECYCLED:
        return "recycle"
    return None
