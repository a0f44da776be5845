"""Pages through HTTP: login with password or token, role checks, escaping, local plotly.js."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import make_part, make_user


def login(client: TestClient, session, role: str = "technician"):  # type: ignore[no-untyped-def]
    user, _ = make_user(session, role, password="correct horse")
    r = client.post("/login", data={"username": user.username, "password": "correct horse"}, follow_redirects=False)
    assert r.status_code == 303
    return user, r


def test_pages_need_a_login(client: TestClient) -> None:
    r = client.get("/scan", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/scan"
    assert "Log in" in client.get("/").text


def test_password_login_lands_on_the_role_page_and_logout_revokes(client: TestClient, session
                                                                   ) -> None:  # type: ignore[no-untyped-def]
    _, r = login(client, session, "technician")
    assert r.headers["location"] == "/scan"
    cookie = r.cookies.get("refurb_session")
    assert cookie
    page = client.get("/scan")
    assert page.status_code == 200
    assert 'id="code"' in page.text
    assert client.get("/api/v1/users/me").status_code == 200  # the page session also works for the API
    client.post("/logout", follow_redirects=False)
    client.cookies.set("refurb_session", cookie)
    assert client.get("/api/v1/users/me").status_code == 401


def test_bad_password_and_token_login(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    user, token = make_user(session, "manager", password="correct horse")
    r = client.post("/login", data={"username": user.username, "password": "wrong"}, follow_redirects=False)
    assert r.status_code == 401
    assert "Unknown user name or password" in r.text
    r = client.post("/login", data={"token": token, "next": "/robots"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/robots"


def test_login_attempts_are_rate_limited(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    statuses = [client.post("/login", data={"username": "mallory", "password": "x"}).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


def test_open_redirect_is_refused(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    user, _ = make_user(session, "manager", password="correct horse")
    r = client.post("/login", data={"username": user.username, "password": "correct horse",
                                    "next": "//evil.example/x"}, follow_redirects=False)
    assert r.headers["location"] == "/dashboard"


def test_customers_cannot_open_the_scan_station(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    login(client, session, "customer")
    r = client.get("/scan")
    assert r.status_code == 403
    assert "cannot open this page" in r.text


def test_passport_escapes_user_text_and_shows_the_chain(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    login(client, session, "technician")
    part = make_part(session, serial="<script>alert(1)</script>", notes="x")
    r = client.get(f"/parts/{part.id}", headers={"accept": "text/html"})
    assert r.status_code == 200
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "hash chain verified" in r.text
    missing = client.get("/parts/999999", headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert "part 999999 not found" in missing.text


def test_plotly_is_served_locally(client: TestClient) -> None:
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert len(r.content) > 1_000_000
    assert client.get("/static/scan.js").status_code == 200


def test_passport_shows_the_reuse_score_circularity_and_verdicts(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    login(client, session, "technician")
    part = make_part(session)
    r = client.get(f"/parts/{part.id}")
    assert r.status_code == 200
    for heading in ("Reuse score", "Circularity", "Expert verdicts", "Genealogy", "Test results"):
        assert heading in r.text
    assert "economics" in r.text
