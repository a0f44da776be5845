"""Ticket REST API: the contract, object-level access on every id, no mass assignment, attachments."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb.auth import get_current_user
from refurb.config import Settings
from refurb.parts import service as parts_service
from tests.consulting.helpers import part_in_process
from tests.factories import headers, make_part, make_robot, make_user

API = "/api/v1"


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    """Two customer organisations, consultants with specialties, a manager, a technician; tokens by name."""
    out: dict[str, Any] = {}
    for name, role, extra in [("alice", "customer", {"org": "Acme Robotics"}),
                              ("carol", "customer", {"org": "Acme Robotics"}),
                              ("bob", "customer", {"org": "Busan Metal"}),
                              ("kim", "consultant", {"specialties": ["testing"]}),
                              ("lee", "consultant", {}),
                              ("mina", "manager", {}),
                              ("tae", "technician", {})]:
        user, token = make_user(session, role, username=name, **extra)
        out[name] = user
        out[name + "_h"] = headers(token)
    return out


def _open(client: TestClient, h: dict[str, str], **body: Any) -> dict[str, Any]:
    r = client.post(f"{API}/tickets", json={"title": "J3 noise", "description": "grinding", "category": "testing",
                                            "priority": "high"} | body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_acceptance_story(client: TestClient, session: Session, world: dict[str, Any]) -> None:
    part = make_part(session)
    t = _open(client, world["alice_h"], part_ids=[part.id])
    assert t["state"] == "new"
    assert t["links"] == [{"kind": "part", "target_id": part.id}]
    assert t["requester_org_id"] == world["alice"].organisation_id
    assert client.get(f"{API}/tickets/{t['id']}", headers=world["bob_h"]).status_code == 404
    r = client.post(f"{API}/tickets/{t['id']}/transitions", json={"to": "assigned", "assignee_id": world["kim"].id},
                    headers=world["mina_h"])
    assert r.status_code == 200, r.text
    assert r.json()["assignee_id"] == world["kim"].id
    r = client.post(f"{API}/tickets/{t['id']}/comments", json={"body": "supplier batch suspect", "internal": True},
                    headers=world["kim_h"])
    assert r.status_code == 201
    comments = client.get(f"{API}/tickets/{t['id']}/comments", headers=world["alice_h"])
    assert comments.status_code == 200
    assert "supplier batch suspect" not in comments.text
    close = {"resolution": "bearing wear beyond limit", "verdicts": [{"part_id": part.id, "verdict": "quarantine"}]}
    r = client.post(f"{API}/tickets/{t['id']}/close", json=close, headers=world["lee_h"])
    assert r.status_code == 403
    r = client.post(f"{API}/tickets/{t['id']}/close", json=close, headers=world["kim_h"])
    assert r.status_code == 200, r.text
    assert r.json()["ticket"]["state"] == "closed"
    assert r.json()["verdicts"][0]["verdict"] == "quarantine"
    events = client.get(f"{API}/parts/{part.id}/events", headers=world["mina_h"]).json()
    assert events[-1]["type"] == "quarantined"
    robot = make_robot(session)
    r = client.post(f"{API}/parts/{part.id}/events", json={"type": "installed", "robot_id": robot.id},
                    headers=world["tae_h"])
    assert r.status_code == 409


def test_every_ticket_route_is_authenticated(app, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    def calls(dep):  # type: ignore[no-untyped-def]
        out = {dep.call}
        for sub in dep.dependencies:
            out |= calls(sub)
        return out

    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    for r in app.routes:
        if hasattr(r, "effective_route_contexts"):
            routes.extend(r.effective_route_contexts())
    mine = [r for r in routes if r.path.startswith(f"{API}/tickets") or r.path.startswith(f"{API}/sla-policies")]
    assert len(mine) >= 20
    assert [r.path for r in mine if get_current_user not in calls(r.dependant)] == []
    for r in mine:
        path = r.path.replace("{ticket_id}", "1").replace("{attachment_id}", "1")
        for method in r.methods:
            assert client.request(method, path).status_code == 401, (method, path)


def test_mass_assignment_is_ignored(client: TestClient, world: dict[str, Any]) -> None:
    t = _open(client, world["alice_h"], id=999, state="closed", assignee_id=world["kim"].id,
              requester_org_id=world["bob"].organisation_id, requester_id=world["bob"].id, sla_level="breached",
              resolution_summary="done", event_count=50)
    assert t["id"] != 999
    assert t["state"] == "new"
    assert t["assignee_id"] is None
    assert t["requester_org_id"] == world["alice"].organisation_id
    assert t["requester_id"] == world["alice"].id
    assert t["resolution_summary"] is None


def test_bounds_are_422(client: TestClient, world: dict[str, Any]) -> None:
    h = world["alice_h"]
    assert client.post(f"{API}/tickets", json={"title": "x" * 201}, headers=h).status_code == 422
    assert client.post(f"{API}/tickets", json={"title": ""}, headers=h).status_code == 422
    assert client.post(f"{API}/tickets", json={"title": "x", "part_ids": list(range(1, 200))},
                       headers=h).status_code == 422
    assert client.post(f"{API}/tickets", json={"title": "x", "category": "astrology"}, headers=h).status_code == 422
    t = _open(client, h)
    r = client.post(f"{API}/tickets/{t['id']}/comments", json={"body": "x" * 10_001}, headers=h)
    assert r.status_code == 422
    r = client.post(f"{API}/tickets/{t['id']}/time", json={"minutes": 0}, headers=world["mina_h"])
    assert r.status_code == 422
    assert client.get(f"{API}/tickets?limit=501", headers=h).status_code == 422
    assert client.get(f"{API}/tickets?sort=priority", headers=h).status_code == 422
    assert client.get(f"{API}/tickets?state=nonsense", headers=h).status_code == 422


def test_by_id_attempts_on_someone_elses_ticket(client: TestClient, session: Session, world: dict[str, Any]) -> None:
    t = _open(client, world["alice_h"])
    tid = t["id"]
    att = client.post(f"{API}/tickets/{tid}/attachments", files={"file": ("a.txt", b"hello", "text/plain")},
                      headers=world["alice_h"]).json()
    attempts = [("GET", f"/tickets/{tid}", None), ("GET", f"/tickets/{tid}/comments", None),
                ("POST", f"/tickets/{tid}/comments", {"body": "hi"}), ("GET", f"/tickets/{tid}/events", None),
                ("GET", f"/tickets/{tid}/sla", None), ("GET", f"/tickets/{tid}/attachments", None),
                ("GET", f"/tickets/{tid}/attachments/{att['id']}", None), ("GET", f"/tickets/{tid}/verdicts", None),
                ("POST", f"/tickets/{tid}/transitions", {"to": "in_progress"}),
                ("POST", f"/tickets/{tid}/close", {"resolution": "x"}),
                ("POST", f"/tickets/{tid}/watchers", {"user_id": world["bob"].id}),
                ("POST", f"/tickets/{tid}/links", {"robot_ids": []})]
    for method, path, body in attempts:
        r = client.request(method, API + path, json=body, headers=world["bob_h"])
        assert r.status_code == 404, (method, path, r.status_code)  # another organisation: it does not exist
        r = client.request(method, API + path, json=body, headers=world["lee_h"])
        assert r.status_code == 403, (method, path, r.status_code)  # center staff outside the ticket's queue
    # a ticket that does not exist is 404 for everybody
    assert client.get(f"{API}/tickets/999999", headers=world["lee_h"]).status_code == 404
    # a colleague from the same organisation sees it
    assert client.get(f"{API}/tickets/{tid}", headers=world["carol_h"]).status_code == 200


def test_lists_filters_and_queue(client: TestClient, world: dict[str, Any]) -> None:
    a = _open(client, world["alice_h"], priority="urgent", title="urgent one")
    b = _open(client, world["alice_h"], priority="low", title="low one")
    c = _open(client, world["bob_h"], category="design", title="bob's")
    r = client.get(f"{API}/tickets", headers=world["alice_h"]).json()
    assert r["count"] == 2
    assert [t["id"] for t in r["data"]] == [a["id"], b["id"]]  # due first
    assert client.get(f"{API}/tickets?org={world['bob'].organisation_id}", headers=world["alice_h"]).json()[
        "count"] == 0
    assert client.get(f"{API}/tickets", headers=world["mina_h"]).json()["count"] == 3
    assert client.get(f"{API}/tickets?category=design", headers=world["mina_h"]).json()["data"][0]["id"] == c["id"]
    assert client.get(f"{API}/tickets?priority=low", headers=world["mina_h"]).json()["count"] == 1
    client.post(f"{API}/tickets/{a['id']}/transitions", json={"to": "assigned"}, headers=world["kim_h"])
    mine = client.get(f"{API}/tickets?assignee=me", headers=world["kim_h"]).json()
    assert [t["id"] for t in mine["data"]] == [a["id"]]
    assert client.get(f"{API}/tickets?assignee={world['kim'].id}&state=assigned",
                      headers=world["mina_h"]).json()["count"] == 1
    assert client.get(f"{API}/tickets?state=new,assigned", headers=world["mina_h"]).json()["count"] == 3
    assert client.get(f"{API}/tickets?breached=true", headers=world["mina_h"]).json()["count"] == 0
    page = client.get(f"{API}/tickets?limit=1&offset=1&sort=created", headers=world["mina_h"]).json()
    assert page["count"] == 3
    assert [t["id"] for t in page["data"]] == [b["id"]]
    queue = client.get(f"{API}/tickets/queue", headers=world["kim_h"]).json()
    assert {t["id"] for t in queue["data"]} == {a["id"], b["id"]}
    assert client.get(f"{API}/tickets/queue", headers=world["alice_h"]).status_code == 403
    assert client.get(f"{API}/tickets/queue", headers=world["tae_h"]).status_code == 403
    assert {t["id"] for t in client.get(f"{API}/tickets/queue", headers=world["mina_h"]).json()["data"]} == {
        b["id"], c["id"]}


def test_illegal_transition_is_409_naming_allowed_steps(client: TestClient, world: dict[str, Any]) -> None:
    t = _open(client, world["alice_h"])
    r = client.post(f"{API}/tickets/{t['id']}/transitions", json={"to": "resolved"}, headers=world["mina_h"])
    assert r.status_code == 409
    body = r.json()
    assert body["current_state"] == "new"
    assert body["allowed"] == ["triaged", "assigned", "waiting_customer", "closed"]
    assert "allowed next: triaged, assigned, waiting_customer, closed" in body["detail"]


def test_comments_time_events_sla_and_watchers(client: TestClient, world: dict[str, Any]) -> None:
    t = _open(client, world["alice_h"])
    tid = t["id"]
    kim, mina = world["kim_h"], world["mina_h"]
    client.post(f"{API}/tickets/{tid}/transitions", json={"to": "assigned", "note": "taking it"}, headers=kim)
    assert client.post(f"{API}/tickets/{tid}/comments", json={"body": "which firmware?"},
                       headers=kim).status_code == 201
    assert client.post(f"{API}/tickets/{tid}/comments", json={"body": "x", "internal": True},
                       headers=world["alice_h"]).status_code == 403
    r = client.get(f"{API}/tickets/{tid}", headers=world["alice_h"]).json()
    assert r["first_response_at"] is not None
    assert client.post(f"{API}/tickets/{tid}/time", json={"minutes": 25, "note": "logs"}, headers=kim).status_code \
        == 201
    assert client.post(f"{API}/tickets/{tid}/time", json={"minutes": 5}, headers=world["alice_h"]).status_code \
        == 403
    time = client.get(f"{API}/tickets/{tid}/time", headers=mina).json()
    assert (time["count"], time["total_minutes"], time["data"][0]["user"]) == (1, 25, "kim")
    sla = client.get(f"{API}/tickets/{tid}/sla", headers=world["alice_h"]).json()
    assert sla["policy"]["response_target_h"] == 4.0
    assert sla["level"] == "ok"
    assert sla["calendar"]["tz"] == "Asia/Seoul"
    events = client.get(f"{API}/tickets/{tid}/events", headers=world["alice_h"]).json()
    assert [e["kind"] for e in events] == ["created", "transition"]
    assert "note" not in events[1]["details"]
    assert client.get(f"{API}/tickets/{tid}/events", headers=kim).json()[1]["details"]["note"] == "taking it"
    assert client.get(f"{API}/tickets/{tid}/verify", headers=kim).json()["valid"] is True
    assert client.get(f"{API}/tickets/{tid}/verify", headers=world["alice_h"]).status_code == 403
    # watchers: lee may read once watching; customers may add colleagues but not other organisations' users
    assert client.get(f"{API}/tickets/{tid}", headers=world["lee_h"]).status_code == 403
    r = client.post(f"{API}/tickets/{tid}/watchers", json={"user_id": world["lee"].id}, headers=mina)
    assert r.status_code == 201
    assert r.json() == [world["lee"].id]
    assert client.get(f"{API}/tickets/{tid}", headers=world["lee_h"]).status_code == 200
    assert client.post(f"{API}/tickets/{tid}/watchers", json={"user_id": world["bob"].id},
                       headers=mina).status_code == 422
    assert client.post(f"{API}/tickets/{tid}/watchers", json={"user_id": world["carol"].id},
                       headers=world["alice_h"]).status_code == 201
    assert client.post(f"{API}/tickets/{tid}/watchers", json={"user_id": world["tae"].id},
                       headers=world["alice_h"]).status_code == 403


def test_links_after_opening(client: TestClient, session: Session, world: dict[str, Any]) -> None:
    own = make_robot(session, owner_org_id=world["alice"].organisation_id)
    other = make_robot(session, owner_org_id=world["bob"].organisation_id)
    t = _open(client, world["alice_h"])
    r = client.post(f"{API}/tickets/{t['id']}/links", json={"robot_ids": [own.id], "test_run_ids": [12]},
                    headers=world["alice_h"])
    assert r.status_code == 201
    assert {(x["kind"], x["target_id"]) for x in r.json()} == {("robot", own.id), ("test_run", 12)}
    r = client.post(f"{API}/tickets/{t['id']}/links", json={"robot_ids": [other.id]}, headers=world["alice_h"])
    assert r.status_code == 422
    assert client.get(f"{API}/tickets?robot_id={own.id}", headers=world["mina_h"]).json()["count"] == 1


def test_refused_close_over_http_applies_nothing(client: TestClient, session: Session, world: dict[str, Any]
                                                 ) -> None:
    fine, fresh = part_in_process(session), make_part(session)
    t = _open(client, world["mina_h"], part_ids=[fine.id, fresh.id])
    client.post(f"{API}/tickets/{t['id']}/transitions", json={"to": "assigned"}, headers=world["kim_h"])
    body = {"resolution": "x", "verdicts": [{"part_id": fine.id, "verdict": "scrap"},
                                            {"part_id": fresh.id, "verdict": "require_remanufacture"}]}
    r = client.post(f"{API}/tickets/{t['id']}/close", json=body, headers=world["kim_h"])
    assert r.status_code == 409
    assert "nothing was applied" in r.json()["detail"]
    session.expire_all()
    assert parts_service.get_part(session, fine.id).status == "inspected"
    assert client.get(f"{API}/tickets/{t['id']}", headers=world["kim_h"]).json()["state"] == "assigned"
    assert client.get(f"{API}/tickets/{t['id']}/verdicts", headers=world["kim_h"]).json() == []
    r = client.post(f"{API}/tickets/{t['id']}/close", json={"resolution": "x", "verdicts": [
        {"part_id": fine.id, "robot_id": 1, "verdict": "scrap"}]}, headers=world["kim_h"])
    assert r.status_code == 422


def test_sla_policies(client: TestClient, world: dict[str, Any]) -> None:
    assert len(client.get(f"{API}/sla-policies", headers=world["kim_h"]).json()) == 4
    assert client.get(f"{API}/sla-policies", headers=world["alice_h"]).status_code == 403
    body = {"priority": "high", "category": "design", "response_target_h": 2, "resolution_target_h": 12}
    assert client.put(f"{API}/sla-policies", json=body, headers=world["kim_h"]).status_code == 403
    r = client.put(f"{API}/sla-policies", json=body, headers=world["mina_h"])
    assert r.status_code == 200
    assert r.json()["source"] == "policy"
    t = _open(client, world["alice_h"], category="design")
    assert (t["response_target_h"], t["resolution_target_h"]) == (2, 12)
    policy = client.get(f"{API}/tickets/{t['id']}/sla", headers=world["alice_h"]).json()["policy"]
    assert (policy["category"], policy["source"]) == ("design", "policy")


# --- attachments -----------------------------------------------------------------------------------------------


def test_attachment_round_trip_and_access(client: TestClient, world: dict[str, Any], settings: Settings) -> None:
    t = _open(client, world["alice_h"])
    tid = t["id"]
    payload = bytes(range(256)) * 10
    r = client.post(f"{API}/tickets/{tid}/attachments",
                    files={"file": ("../../etc/<passwd>.bin", payload, "application/x-evil")},
                    headers=world["alice_h"])
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["filename"] == "_passwd_.bin"
    assert att["content_type"] == "application/octet-stream"
    assert att["size_bytes"] == len(payload)
    stored = list((settings.attachments_dir / str(tid)).iterdir())
    assert [p.read_bytes() for p in stored] == [payload]
    assert stored[0].name != att["filename"]
    r = client.get(f"{API}/tickets/{tid}/attachments/{att['id']}", headers=world["kim_h"])
    assert r.status_code == 200
    assert r.content == payload
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment")
    # internal attachments: staff only
    r = client.post(f"{API}/tickets/{tid}/attachments", files={"file": ("notes.txt", b"internal", "text/plain")},
                    data={"internal": "true"}, headers=world["kim_h"])
    internal = r.json()
    assert internal["internal"] is True
    assert [a["id"] for a in client.get(f"{API}/tickets/{tid}/attachments", headers=world["alice_h"]).json()] == [
        att["id"]]
    assert len(client.get(f"{API}/tickets/{tid}/attachments", headers=world["kim_h"]).json()) == 2
    assert client.get(f"{API}/tickets/{tid}/attachments/{internal['id']}",
                      headers=world["alice_h"]).status_code == 404
    assert client.post(f"{API}/tickets/{tid}/attachments", files={"file": ("x.txt", b"x", "text/plain")},
                       data={"internal": "true"}, headers=world["alice_h"]).status_code == 403
    # another ticket's attachment id through this ticket: 404
    other = _open(client, world["alice_h"])
    assert client.get(f"{API}/tickets/{other['id']}/attachments/{att['id']}",
                      headers=world["alice_h"]).status_code == 404


def test_attachment_limits(client: TestClient, world: dict[str, Any], settings: Settings) -> None:
    t = _open(client, world["alice_h"])
    too_big = b"x" * (settings.attachment_max_bytes + 1)
    r = client.post(f"{API}/tickets/{t['id']}/attachments", files={"file": ("big.bin", too_big)},
                    headers=world["alice_h"])
    assert r.status_code == 413
    r = client.post(f"{API}/tickets/{t['id']}/attachments", files={"file": ("empty.txt", b"")},
                    headers=world["alice_h"])
    assert r.status_code == 422
    assert not (settings.attachments_dir / str(t["id"])).exists() or not any(
        p.name[0] != "." for p in (settings.attachments_dir / str(t["id"])).iterdir())
