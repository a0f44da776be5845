"""In a real headless Chromium: a consultant opens the queue, opens a ticket about a part and closes it with a
quarantine verdict through the close form; the part is then quarantined."""

from __future__ import annotations

import re

from sqlmodel import Session

from refurb.consulting import service
from refurb.consulting.models import TicketCreate, TicketState, TransitionRequest
from refurb.parts import service as parts_service
from tests.browser.conftest import login
from tests.consulting.helpers import part_in_process
from tests.factories import make_user


def test_consultant_closes_a_ticket_with_a_quarantine_verdict(live, page) -> None:  # type: ignore[no-untyped-def]
    with Session(live.engine, expire_on_commit=False) as s:
        kim, _ = make_user(s, "consultant", username="kim-browser", password="bench-pass-1",
                           specialties=["testing"])
        customer, _ = make_user(s, "customer", username="acme-browser", org="Acme Robotics")
        part = part_in_process(s, serial="SN-J3-REDUCER")
        other = service.create_ticket(s, TicketCreate(title="Encoder drift on R-7", category="testing",
                                                      priority="low"), requester=customer)
        ticket = service.create_ticket(s, TicketCreate(title="<b>J3 reducer backlash</b>", category="testing",
                                                       priority="urgent", part_ids=[part.id]), requester=customer)
        service.transition(s, ticket, TransitionRequest(to=TicketState.ASSIGNED), actor=kim)
        s.commit()

    login(page, live.base, "kim-browser", "bench-pass-1")
    page.wait_for_url(live.base + "/tickets")
    assert page.url == live.base + "/tickets"
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).get_attribute("data-ticket-id") == str(ticket.id)  # urgent: soonest due first
    assert rows.nth(1).get_attribute("data-ticket-id") == str(other.id)
    first = page.locator(f"tr[data-ticket-id='{ticket.id}'] .countdown")
    page.wait_for_function("el => /\\d\\d:\\d\\d:\\d\\d/.test(el.textContent)", arg=first.element_handle())
    before = first.inner_text()
    page.wait_for_timeout(1300)
    assert first.inner_text() != before  # the countdown ticks in the browser
    assert page.locator(f"tr[data-ticket-id='{ticket.id}'] .ticket-title").inner_text() == "<b>J3 reducer backlash</b>"

    page.click(f"tr[data-ticket-id='{ticket.id}'] .ticket-title")
    page.wait_for_url(re.compile(rf".*/tickets/{ticket.id}$"))
    assert page.inner_text("#ticket-title") == "<b>J3 reducer backlash</b>"
    assert page.locator(f"#links a[href='/parts/{part.id}']").inner_text() == "SN-J3-REDUCER"
    row = page.locator(f"tr.verdict-row[data-target='part:{part.id}']")
    assert not row.locator(".sub-part").is_visible()
    page.fill("#close-form textarea[name=resolution]", "Backlash 3.1 arcmin, above the 2 arcmin limit")
    row.locator("select[name=verdict]").select_option("quarantine")
    row.locator("input[name=note]").fill("hold until the supplier answers")
    page.click("#close-button")
    page.wait_for_selector("#flash")
    assert "Ticket closed" in page.inner_text("#flash")
    assert page.inner_text("#ticket-state") == "closed"
    assert "quarantine" in page.inner_text("#verdicts")
    assert "quarantined" in page.inner_text("#links")
    assert page.js_errors == []

    with Session(live.engine) as s:
        stored = parts_service.get_part(s, part.id)
        assert stored.quarantined is True
        assert parts_service.list_events(s, stored)[-1].type == "quarantined"
        assert service.get_ticket(s, ticket.id, viewer=None).state == "closed"
