"""Consultant queue and ticket pages through HTTP: ordering, isolation, internal comments, escaping, the forms."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from refurb.consulting import service
from refurb.consulting.models import CommentCreate, TicketCreate
from refurb.parts import service as parts_service
from tests.consulting.helpers import part_in_process
from tests.factories import make_part, make_robot, make_user

PASSWORD = "correct horse"
HTML = {"accept": "text/html"}


@pytest.fixture
def people(session: Session) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, role, extra in [("alice", "customer", {"org": "Acme Robotics"}),
                              ("bob", "customer", {"org": "Busan Metal"}),
                              ("kim", "consultant", {"specialties": ["testing"]}),
                              ("lee", "consultant", {"specialties": ["design"]}),
                              ("mina", "manager", {}),
                              ("tae", "technician", {})]:
        out[name] = make_user(session, role, username=name, password=PASSWORD, **extra)[0]
    return out


def login(client: TestClient, user: Any) -> None:
    client.cookies.clear()
    r = client.post("/login", data={"username": user.username, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text


def open_ticket(session: Session, requester: Any, **fields: Any) -> Any:
    data = {"title": "J3 noise", "description": "grinding", "category": "testing", "priority": "normal"} | fields
    ticket = service.create_ticket(session, TicketCreate(**data), requester=requester)
    session.commit()
    return ticket


def titles(html: str) -> list[str]:
    return re.findall(r'class="ticket-title">([^<]*)</a>', html)


def test_queue_is_sorted_by_sla_due_time_with_countdowns(client: TestClient, session: Session,
                                                         people: dict[str, Any]) -> None:
    for title, priority in [("low one", "low"), ("urgent one", "urgent"), ("normal one", "normal"),
                            ("high one", "high")]:
        open_ticket(session, people["mina"], title=title, priority=priority)
    open_ticket(session, people["mina"], title="design one", category="design", priority="urgent")
    login(client, people["kim"])
    r = client.get("/tickets")  # a consultant lands on their queue: unassigned tickets of their specialty
    assert r.status_code == 200
    assert titles(r.text) == ["urgent one", "high one", "normal one", "low one"]
    assert r.text.count('class="countdown"') == 4
    assert 'data-due="' in r.text
    assert '<script src="/static/tickets.js">' in r.text
    login(client, people["mina"])
    everything = client.get("/tickets?scope=all")
    assert titles(everything.text) == ["urgent one", "design one", "high one", "normal one", "low one"]
    urgent = client.get("/tickets?scope=all&priority=urgent&category=design")
    assert titles(urgent.text) == ["design one"]
    assert client.get("/tickets?scope=all&breached=yes").text.count('class="ticket-title"') == 0
    assert client.get("/tickets?category=nonsense", headers=HTML).status_code == 422
    assert client.get("/static/tickets.js").status_code == 200


def test_customers_see_only_their_organisation(client: TestClient, session: Session, people: dict[str, Any]) -> None:
    mine = open_ticket(session, people["alice"], title="Acme gearbox question")
    theirs = open_ticket(session, people["bob"], title="Busan secret project")
    for n in range(3):
        open_ticket(session, people["mina"], title=f"internal {n}")
    robot = make_robot(session, serial="R-BUSAN-9", owner_org_id=people["bob"].organisation_id)
    login(client, people["alice"])
    r = client.get("/tickets?scope=queue&state=all")
    assert r.status_code == 200
    assert titles(r.text) == ["Acme gearbox question"]
    assert "Tickets <span class=\"muted\">(1)</span>" in r.text  # no count of anything else leaks
    assert "Busan" not in r.text
    assert "internal 0" not in r.text
    assert robot.serial not in r.text  # the new-ticket form offers only the customer's own robots
    assert 'name="scope"' not in r.text
    assert client.get(f"/tickets/{mine.id}").status_code == 200
    other = client.get(f"/tickets/{theirs.id}", headers=HTML)
    assert other.status_code == 404
    assert "Busan secret project" not in other.text
    assert f"ticket {theirs.id} not found" in other.text
    # a page action on someone else's ticket is the same 404, and nothing is written
    r = client.post(f"/tickets/{theirs.id}/comments", data={"body": "hello"}, headers=HTML, follow_redirects=False)
    assert r.status_code == 404
    assert service.list_comments(session, theirs, viewer=None) == []


def test_internal_comments_are_for_the_center_only(client: TestClient, session: Session,
                                                   people: dict[str, Any]) -> None:
    ticket = open_ticket(session, people["alice"])
    service.add_comment(session, ticket, CommentCreate(body="supplier batch suspect", internal=True),
                        author=people["kim"])
    service.add_comment(session, ticket, CommentCreate(body="we are looking at it"), author=people["kim"])
    session.commit()
    login(client, people["alice"])
    page = client.get(f"/tickets/{ticket.id}").text
    assert "we are looking at it" in page
    assert "supplier batch suspect" not in page
    assert 'name="internal"' not in page  # no internal checkbox for customers
    r = client.post(f"/tickets/{ticket.id}/comments", data={"body": "sneaky", "internal": "true"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert "customers cannot post internal comments" in r.text
    assert "sneaky" in r.text  # what they typed is kept in the form
    login(client, people["kim"])
    page = client.get(f"/tickets/{ticket.id}").text
    assert "supplier batch suspect" in page
    assert "internal · center only" in page
    assert 'name="internal"' in page


def test_user_text_is_escaped(client: TestClient, session: Session, people: dict[str, Any]) -> None:
    evil = "<script>alert(1)</script>"
    part = make_part(session, serial="<img src=x onerror=alert(2)>")
    ticket = open_ticket(session, people["mina"], title=evil, description=evil, part_ids=[part.id])
    service.add_comment(session, ticket, CommentCreate(body=evil), author=people["mina"])
    session.commit()
    login(client, people["kim"])
    for url in ("/tickets", f"/tickets/{ticket.id}"):
        html = client.get(url).text
        assert evil not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html
    refused = client.post("/tickets", data={"title": evil, "parts": "<b>no-such</b>"})
    assert refused.status_code == 422
    assert evil not in refused.text
    assert "<b>no-such</b>" not in refused.text
    assert "&lt;b&gt;no-such&lt;/b&gt;" in refused.text


def test_403_404_and_login(client: TestClient, session: Session, people: dict[str, Any]) -> None:
    ticket = open_ticket(session, people["mina"], title="testing question")
    r = client.get(f"/tickets/{ticket.id}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next=/tickets/{ticket.id}"
    login(client, people["lee"])  # design consultant: outside this testing ticket
    r = client.get(f"/tickets/{ticket.id}", headers=HTML)
    assert r.status_code == 403
    assert "not in your specialty queue" in r.text
    assert "testing question" not in r.text
    r = client.get("/tickets/999999", headers=HTML)
    assert r.status_code == 404
    assert "ticket 999999 not found" in r.text


def test_work_a_ticket_through_the_forms(client: TestClient, session: Session, people: dict[str, Any],
                                         settings: Any) -> None:
    ok_part, fresh_part = part_in_process(session, serial="SN-OK"), make_part(session, serial="SN-FRESH")
    ticket = open_ticket(session, people["alice"], part_ids=[ok_part.id, fresh_part.id])
    login(client, people["kim"])
    page = client.get(f"/tickets/{ticket.id}").text
    assert 'id="take"' in page
    assert 'id="close-form"' not in page
    assert f'href="/parts/{ok_part.id}"' in page
    r = client.post(f"/tickets/{ticket.id}/transitions", data={"to": "assigned"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/tickets/{ticket.id}?done=moved"
    r = client.post(f"/tickets/{ticket.id}/transitions", data={"to": "in_progress", "note": "on the bench"})
    assert r.status_code == 200
    assert "Ticket updated." in r.text
    assert 'id="ticket-state">in progress' in r.text
    illegal = client.post(f"/tickets/{ticket.id}/transitions", data={"to": "new"})
    assert illegal.status_code == 409
    assert "allowed next" in illegal.text
    r = client.post(f"/tickets/{ticket.id}/comments", data={"body": "measuring backlash now"})
    assert r.status_code == 200
    assert "measuring backlash now" in r.text
    r = client.post(f"/tickets/{ticket.id}/time", data={"minutes": "45", "note": "bench test"})
    assert "45 min" in r.text
    assert "bench test" in r.text
    assert client.post(f"/tickets/{ticket.id}/time", data={"minutes": "0"}).status_code == 422
    r = client.post(f"/tickets/{ticket.id}/attachments", files={"file": ("report.txt", b"backlash 3 arcmin",
                                                                         "text/plain")})
    assert r.status_code == 200, re.findall(r'class="alert"[^<]*<', r.text)
    assert "report.txt" in r.text
    assert client.post(f"/tickets/{ticket.id}/attachments", files={"file": ("empty.txt", b"", "text/plain")}
                       ).status_code == 422

    # a verdict the part's state machine refuses: 409 on the page, nothing applied, the form keeps its values
    form = {"resolution": "worn beyond limit",
            "target": [f"part:{ok_part.id}", f"part:{fresh_part.id}"], "verdict": ["scrap", "approve_reuse"],
            "sub_part": ["", ""], "note": ["cracked housing", ""]}
    r = client.post(f"/tickets/{ticket.id}/close", data=form)
    assert r.status_code == 409
    assert "close refused, nothing was applied" in r.text
    assert "cracked housing" in r.text
    assert "worn beyond limit" in r.text
    session.expire_all()
    assert parts_service.get_part(session, ok_part.id).status == "inspected"
    assert service.get_ticket(session, ticket.id, viewer=None).state == "in_progress"
    assert service.verdicts_for_ticket(session, ticket) == []

    form["verdict"] = ["quarantine", "none"]
    r = client.post(f"/tickets/{ticket.id}/close", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get(r.headers["location"]).text
    assert 'id="ticket-state">closed' in page
    assert "Ticket closed" in page
    assert "quarantine" in page
    session.expire_all()
    assert parts_service.get_part(session, ok_part.id).quarantined is True
    assert parts_service.get_part(session, fresh_part.id).event_count == 0

    login(client, people["alice"])  # the customer sees the outcome but no close form, time or internal bits
    page = client.get(f"/tickets/{ticket.id}").text
    assert "worn beyond limit" in page
    assert 'id="close-form"' not in page
    assert 'id="time"' not in page
    assert "on the bench" not in page  # transition notes are internal
    assert "Reopen" in page


def test_new_ticket_form(client: TestClient, session: Session, people: dict[str, Any]) -> None:
    own = make_part(session, serial="SN-ACME-1", owner_org_id=people["alice"].organisation_id)
    other = make_part(session, serial="SN-BUSAN-1", owner_org_id=people["bob"].organisation_id)
    robot = make_robot(session, serial="R-ACME-1", owner_org_id=people["alice"].organisation_id)
    login(client, people["alice"])
    assert "R-ACME-1" in client.get("/tickets").text
    r = client.post("/tickets", data={"title": "Reducer advice", "description": "which grease?",
                                      "category": "remanufacturing", "priority": "high", "parts": "SN-BUSAN-1"})
    assert r.status_code == 422
    assert "no part with serial &#39;SN-BUSAN-1&#39; that you may see" in r.text
    assert 'value="Reducer advice"' in r.text
    r = client.post("/tickets", data={"title": "Reducer advice", "description": "which grease?",
                                      "category": "remanufacturing", "priority": "high", "parts": "SN-ACME-1",
                                      "robot_ids": [str(robot.id)]}, follow_redirects=False)
    assert r.status_code == 303
    ticket_id = int(r.headers["location"].split("/")[2].split("?")[0])
    ticket = service.get_ticket(session, ticket_id, viewer=None)
    assert ticket.requester_org_id == people["alice"].organisation_id
    assert {(link.kind, link.target_id) for link in service.ticket_links(session, ticket)} == {
        ("part", own.id), ("robot", robot.id)}
    assert other.id not in {link.target_id for link in service.ticket_links(session, ticket)}
    page = client.get(r.headers["location"]).text
    assert "Ticket opened." in page
    assert "R-ACME-1" in page
