"""In a real headless Chromium: the center dashboard draws every chart with the local plotly.js, no JS errors."""

from __future__ import annotations

from sqlmodel import Session

from tests.browser.conftest import login
from tests.dashboards.test_pages import _center
from tests.factories import make_user


def test_dashboard_renders_without_javascript_errors(live, page) -> None:  # type: ignore[no-untyped-def]
    with Session(live.engine, expire_on_commit=False) as s:
        _center(s)
        user, _ = make_user(s, "manager", password="dash-pass-1")
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))
    login(page, live.base, user.username, "dash-pass-1")
    page.wait_for_url(live.base + "/dashboard")
    page.wait_for_function("document.querySelectorAll('.chart .main-svg').length >= 3")
    charts = page.evaluate("Array.from(document.querySelectorAll('.chart')).map(e => e.data ? e.data.length : 0)")
    assert charts
    assert all(n >= 1 for n in charts)
    assert page.js_errors == []
    assert failed == []
    assert all(not r.startswith("http") or r.startswith(live.base) for r in page.evaluate(
        "Array.from(document.scripts).map(s => s.src).filter(Boolean)"))
