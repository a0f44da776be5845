"""In a real headless Chromium: log in, then take a part from intake to inspection by typing into the scan field."""

from __future__ import annotations

from sqlmodel import Session

from refurb.parts import service
from tests.browser.conftest import login
from tests.factories import make_part, make_part_type, make_user

GTIN = "09506000134352"


def test_login_and_scan_flow_from_intake_to_inspection(live, page) -> None:  # type: ignore[no-untyped-def]
    with Session(live.engine, expire_on_commit=False) as s:
        user, _ = make_user(s, "technician", password="bench-pass-1")
        pt = make_part_type(s, gtin=GTIN, part_number="RV-80E")
        part = make_part(s, part_type_id=pt.id, serial="SN-BROWSER-1")
    login(page, live.base, user.username, "bench-pass-1")
    page.wait_for_url(live.base + "/scan")
    assert page.evaluate("document.activeElement.id") == "code"

    # the wedge types the GS1 DataMatrix content and Enter
    page.keyboard.type(f"]d201{GTIN}21SN-BROWSER-1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#card:not([hidden])")
    assert "Part SN-BROWSER-1" in page.inner_text("#card-title")
    page.click("#card-actions button[data-action=received]")
    page.wait_for_function("document.getElementById('message').textContent.includes('Recorded: received')")
    assert page.evaluate("document.activeElement.id") == "code"  # ready for the next scan without a click

    # continuous scanning: scan again, record the inspection with a grade
    page.keyboard.type("SN-BROWSER-1")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('message').textContent.includes('Found part')")
    page.click("#card-actions button[data-action=inspected]")
    page.click("#grade-picker button[data-grade=B]")
    page.wait_for_function("document.getElementById('message').textContent.includes('Recorded: inspected')")

    # an unknown and a malformed code get clear messages
    page.keyboard.type("NO-SUCH-PART")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('message').textContent.startsWith('Unknown code')")
    page.keyboard.type("]E402345674")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('message').textContent.startsWith('Cannot read this code')")
    assert "check digit" in page.inner_text("#message")
    assert page.js_errors == []

    with Session(live.engine) as s:
        stored = service.get_part(s, part.id)
        assert stored.status == "inspected"
        assert stored.grade == "B"
        assert [e.type for e in service.list_events(s, stored)] == ["received", "inspected"]
