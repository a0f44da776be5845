"""The part state machine: which remanufacturing step may follow which (pure: no database).

A part has a process status (where it is in intake -> inspect -> ... -> certify -> ship), plus two orthogonal
facts: a quarantine hold and where it is installed. ``check(...)`` returns None when a step is allowed or the
reason it is not; ``allowed_next(...)`` lists the steps allowed now, for the 409 message and the scan station.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from refurb.parts.models import EventType, PartStatus

S = PartStatus
E = EventType

TERMINAL = frozenset({S.RECYCLED, S.SCRAPPED})
IN_PROCESS = frozenset({S.RECEIVED, S.INSPECTED, S.DISASSEMBLED, S.CLEANED, S.REPAIRED, S.REASSEMBLED, S.TESTED,
                        S.TEST_FAILED, S.CERTIFIED})

# Process steps: the statuses each may follow. Installing, removing, quarantine and release are checked apart.
FROM: dict[EventType, frozenset[PartStatus]] = {
    E.RECEIVED: frozenset({S.REGISTERED, S.SHIPPED}),
    E.INSPECTED: IN_PROCESS - {S.CERTIFIED},
    E.DISASSEMBLED: frozenset({S.RECEIVED, S.INSPECTED, S.TEST_FAILED}),
    E.CLEANED: frozenset({S.RECEIVED, S.INSPECTED, S.DISASSEMBLED, S.CLEANED, S.REPAIRED}),
    E.REPAIRED: frozenset({S.INSPECTED, S.DISASSEMBLED, S.CLEANED, S.REPAIRED, S.TEST_FAILED, S.TESTED}),
    E.REASSEMBLED: frozenset({S.DISASSEMBLED, S.CLEANED, S.REPAIRED, S.INSPECTED}),
    E.TESTED: IN_PROCESS | {S.REGISTERED},
    E.CERTIFIED: frozenset({S.TESTED}),
    E.DISPOSITIONED: IN_PROCESS,
    E.SHIPPED: frozenset({S.CERTIFIED}),
}

# The status an accepted step leaves the part in (None: unchanged).
STATUS_AFTER: dict[EventType, PartStatus | None] = {
    E.RECEIVED: S.RECEIVED,
    E.INSPECTED: S.INSPECTED,
    E.DISASSEMBLED: S.DISASSEMBLED,
    E.CLEANED: S.CLEANED,
    E.REPAIRED: S.REPAIRED,
    E.REASSEMBLED: S.REASSEMBLED,
    E.CERTIFIED: S.CERTIFIED,
    E.SHIPPED: S.SHIPPED,
    E.INSTALLED: None,
    E.REMOVED: None,
    E.QUARANTINED: None,
    E.RELEASED: None,
    E.TESTED: None,  # tested or test_failed, by the result
    E.DISPOSITIONED: None,  # recycled / scrapped for those dispositions
}

# Steps a quarantined part may still take: everything that does not move it towards use.
ALLOWED_IN_QUARANTINE = frozenset({E.RELEASED, E.INSPECTED, E.REMOVED, E.TESTED, E.DISPOSITIONED, E.CLEANED,
                                   E.DISASSEMBLED})


@dataclass(frozen=True)
class PartState:
    """What the state machine needs to know about a part."""

    status: PartStatus
    quarantined: bool
    installed: bool
    last_test_passed: bool | None
    last_test_at: datetime | None
    last_repair_at: datetime | None


def check(state: PartState, step: EventType) -> str | None:
    """Return None if `step` may happen now, else a short reason why not."""
    if state.status in TERMINAL:
        return f"the part is {state.status.value}; no further steps are possible"
    if state.quarantined and step not in ALLOWED_IN_QUARANTINE:
        return "the part is quarantined; release it first"
    if step == E.QUARANTINED:
        return "the part is already quarantined" if state.quarantined else None
    if step == E.RELEASED:
        return None if state.quarantined else "the part is not quarantined"
    if step == E.INSTALLED:
        if state.installed:
            return "the part is installed elsewhere; remove it first"
        if state.status == S.REGISTERED:
            return None  # a known part fitted on arrival (e.g. imported with its robot)
        return None if state.status in IN_PROCESS else f"a {state.status.value} part cannot be installed"
    if step == E.REMOVED:
        return None if state.installed else "the part is not installed"
    if step in (E.SHIPPED,) and state.installed:
        return "the part is installed in an assembly; it ships with it"
    if step == E.CERTIFIED:
        if state.last_test_passed is not True or state.last_test_at is None:
            return "certification needs a passing test since the last repair"
        if state.last_repair_at is not None and state.last_test_at < state.last_repair_at:
            return "certification needs a passing test since the last repair"
    allowed_from = FROM.get(step)
    if allowed_from is not None and state.status not in allowed_from:
        return f"'{step.value}' cannot follow '{state.status.value}'"
    return None


def allowed_next(state: PartState) -> list[str]:
    """List the steps allowed now, in process order."""
    return [step.value for step in EventType if check(state, step) is None]
