"""The hash chain over a part's events catches edits and deletions made behind the API's back."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from refurb.parts import chain
from tests.factories import headers, make_part, make_user


@pytest.fixture
def chained(client: TestClient, session):  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    part = make_part(session)
    for step in ({"type": "received", "station": "intake"}, {"type": "inspected", "grade": "B", "findings": ["x"]},
                 {"type": "cleaned"}, {"type": "repaired", "operations": ["rewind"]}):
        assert client.post(f"/api/v1/parts/{part.id}/events", json=step, headers=headers(token)).status_code == 201
    return part, token


def verify(client: TestClient, part, token):  # type: ignore[no-untyped-def]
    r = client.get(f"/api/v1/parts/{part.id}/verify", headers=headers(token))
    assert r.status_code == 200
    return r.json()


def test_untouched_chain_verifies(client: TestClient, chained) -> None:  # type: ignore[no-untyped-def]
    part, token = chained
    body = verify(client, part, token)
    assert body["valid"] is True
    assert body["events"] == 4
    assert body["first_broken"] is None
    events = client.get(f"/api/v1/parts/{part.id}/events", headers=headers(token)).json()
    assert events[0]["prev_hash"] == chain.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:], strict=False))
    assert body["head"] == events[-1]["hash"]


def test_editing_an_event_is_caught(client: TestClient, session, chained) -> None:  # type: ignore[no-untyped-def]
    part, token = chained
    with session.bind.begin() as conn:  # type: ignore[union-attr]
        conn.execute(text("UPDATE part_event SET station = 'forged' WHERE part_id = :p AND seq = 2"), {"p": part.id})
    body = verify(client, part, token)
    assert body == {"valid": False, "events": 4, "first_broken": 1, "reason": body["reason"], "head": None}
    assert "does not match" in body["reason"]


def test_editing_details_json_is_caught(client: TestClient, session, chained) -> None:  # type: ignore[no-untyped-def]
    part, token = chained
    with session.bind.begin() as conn:  # type: ignore[union-attr]
        conn.execute(text("""UPDATE part_event SET details = '{"grade": "A"}' WHERE part_id = :p AND seq = 2"""),
                     {"p": part.id})
    assert verify(client, part, token)["first_broken"] == 1


def test_deleting_a_middle_event_is_caught(client: TestClient, session, chained) -> None:  # type: ignore[no-untyped-def]
    part, token = chained
    with session.bind.begin() as conn:  # type: ignore[union-attr]
        conn.execute(text("DELETE FROM part_event WHERE part_id = :p AND seq = 3"), {"p": part.id})
    body = verify(client, part, token)
    assert body["valid"] is False
    assert body["first_broken"] == 2
    assert "missing" in body["reason"]


def test_deleting_the_newest_event_is_caught(client: TestClient, session, chained) -> None:  # type: ignore[no-untyped-def]
    part, token = chained
    with session.bind.begin() as conn:  # type: ignore[union-attr]
        conn.execute(text("DELETE FROM part_event WHERE part_id = :p AND seq = 4"), {"p": part.id})
    body = verify(client, part, token)
    assert body["valid"] is False
    assert body["first_broken"] == 3
    assert "records 4 events but 3" in body["reason"]


def test_rehashing_one_event_still_breaks_the_next_link(client: TestClient, session, chained
                                                        ) -> None:  # type: ignore[no-untyped-def]
    part, token = chained
    events = client.get(f"/api/v1/parts/{part.id}/events", headers=headers(token)).json()
    ev = events[1]
    forged = chain.event_hash(chain.event_content(
        part_id=part.id, seq=2, type_="inspected", actor=ev["actor"], station=None,
        occurred_at=__import__("datetime").datetime.fromisoformat(ev["occurred_at"]),
        details={"grade": "A", "findings": ["x"]}, prev_hash=ev["prev_hash"]))
    with session.bind.begin() as conn:  # type: ignore[union-attr]
        conn.execute(text("""UPDATE part_event SET details = '{"grade": "A", "findings": ["x"]}', hash = :h
                             WHERE part_id = :p AND seq = 2"""), {"p": part.id, "h": forged})
    body = verify(client, part, token)
    assert body["valid"] is False
    assert body["first_broken"] == 2
    assert "prev_hash" in body["reason"]


def test_hash_is_sha256_of_rfc8785_canonical_json() -> None:
    import hashlib
    from datetime import UTC, datetime

    content = chain.event_content(part_id=1, seq=1, type_="received", actor="tae", station=None,
                                  occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), details={"b": 1.5, "a": [2]},
                                  prev_hash=chain.GENESIS)
    canonical = ('{"actor":"tae","details":{"a":[2],"b":1.5},"occurred_at":"2026-01-02T03:04:05.000000+00:00",'
                 '"part_id":1,"prev_hash":"' + "0" * 64 + '","seq":1,"station":null,"type":"received"}')
    assert chain.event_hash(content) == hashlib.sha256(canonical.encode()).hexdigest()
