"""The demo center: seeded once, reused on the next start, covering the states the pages show."""

from __future__ import annotations

from sqlmodel import Session, func, select

from refurb import demo
from refurb.parts import service
from refurb.parts.models import Part, PartStatus


def test_seed_once_then_reuse(engine) -> None:  # type: ignore[no-untyped-def]
    first = demo.seed(engine)
    assert {role for role, _, _ in first} == {"admin", "manager", "technician", "consultant", "customer"}
    with Session(engine) as s:
        n_parts = s.exec(select(func.count()).select_from(Part)).one()
    second = demo.seed(engine)
    assert [u for _, u, _ in second] == [u for _, u, _ in first]
    assert {t for *_, t in second}.isdisjoint({t for *_, t in first})  # fresh tokens each start
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Part)).one() == n_parts
        statuses = set(s.exec(select(Part.status).distinct()).all())
        assert {PartStatus.REGISTERED, PartStatus.RECEIVED, PartStatus.INSPECTED, PartStatus.CLEANED,
                PartStatus.REPAIRED, PartStatus.REASSEMBLED, PartStatus.TEST_FAILED, PartStatus.CERTIFIED,
                PartStatus.RECYCLED, PartStatus.SCRAPPED} <= statuses
        assert s.exec(select(func.count()).select_from(Part).where(Part.quarantined)).one() >= 1
        moved = [p for p in s.exec(select(Part)) if len(service.genealogy(s, p)["history"]) >= 2]
        assert moved
        assert all(service.verify_chain(s, p).valid for p in s.exec(select(Part).limit(50)))
