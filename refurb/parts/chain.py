"""Tamper evidence for a part's events: a SHA-256 hash chain over RFC 8785 canonical JSON.

``hash_n = SHA-256(JCS({"part_id", "seq", "type", "actor", "station", "occurred_at", "details", "prev_hash"}))``
with ``prev_hash`` of the first event 64 zeros (RFC 8785, JSON Canonicalization Scheme). The part row keeps the
head hash and the event count, so deleting the newest event is caught as well as editing or deleting any other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

GENESIS = "0" * 64


def event_content(*, part_id: int, seq: int, type_: str, actor: str, station: str | None, occurred_at: datetime,
                  details: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """Return the exact document that is hashed for one event."""
    return {
        "part_id": part_id,
        "seq": seq,
        "type": str(type_),
        "actor": actor,
        "station": station,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "details": details,
        "prev_hash": prev_hash,
    }


def event_hash(content: dict[str, Any]) -> str:
    """SHA-256 (hex) of the RFC 8785 canonical form of `content`."""
    return hashlib.sha256(rfc8785.dumps(content)).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    valid: bool
    events: int
    first_broken: int | None
    reason: str | None = None
    head: str | None = None


def verify(events: Sequence[Any], *, expected_count: int, expected_head: str | None) -> ChainReport:
    """Check a part's events (ordered by seq) link up and match the head stored on the part.

    `first_broken` is the 0-based index of the first event whose link fails, or the index where a missing
    event should be (``len(events)`` when the newest one was deleted).
    """
    prev = GENESIS
    for index, ev in enumerate(events):
        if ev.seq != index + 1:
            return ChainReport(False, len(events), index, f"event #{index + 1} is missing (found seq {ev.seq})")
        if ev.prev_hash != prev:
            return ChainReport(False, len(events), index, "prev_hash does not link to the previous event")
        try:
            recomputed = event_hash(event_content(
                part_id=ev.part_id, seq=ev.seq, type_=ev.type, actor=ev.actor, station=ev.station,
                occurred_at=ev.occurred_at, details=ev.details if isinstance(ev.details, dict) else {"_": ev.details},
                prev_hash=ev.prev_hash))
        except Exception:  # noqa: BLE001 - a row edited into something unhashable is broken, not a crash
            recomputed = ""
        if recomputed != ev.hash:
            return ChainReport(False, len(events), index, "event content does not match its hash")
        prev = ev.hash
    if len(events) != expected_count:
        return ChainReport(False, len(events), len(events),
                           f"the part records {expected_count} events but {len(events)} are stored")
    if (expected_head or None) != (prev if events else None):
        return ChainReport(False, len(events), max(len(events) - 1, 0), "the last event is not the recorded head")
    return ChainReport(True, len(events), None, None, prev if events else None)
