"""Application-wide contracts: every API route is authenticated, 401/403 semantics, schema checks."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine

from refurb import auth
from refurb.app import SchemaOutOfDateError, create_app
from refurb.auth import get_current_user
from refurb.config import Settings
from refurb.db import make_engine
from tests.factories import headers, make_user

PUBLIC_API_ROUTES: set[str] = set()  # none: every /api/v1 route needs a token (health lives at /healthz)


def _dependency_calls(dependant) -> set:  # type: ignore[no-untyped-def]
    calls = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _dependency_calls(sub)
    return calls


def _routes(routes):  # type: ignore[no-untyped-def]
    """Flatten the route table (FastAPI keeps included routers as nested entries)."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "effective_route_contexts"):
            yield from r.effective_route_contexts()


def test_every_api_route_requires_authentication(app) -> None:  # type: ignore[no-untyped-def]
    api_routes = [r for r in _routes(app.routes) if r.path.startswith("/api/v1")]
    assert len(api_routes) > 20
    missing = [f"{sorted(r.methods)} {r.path}" for r in api_routes
               if r.path not in PUBLIC_API_ROUTES and get_current_user not in _dependency_calls(r.dependant)]
    assert missing == []


def test_missing_and_wrong_tokens_are_401(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/parts")
    assert r.status_code == 401
    assert "missing API token" in r.json()["detail"]
    r = client.get("/api/v1/users/me", headers=headers("rfb_not-a-real-token"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_users_me_and_hashed_tokens(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    user, token = make_user(session, "consultant", specialties=["testing"])
    r = client.get("/api/v1/users/me", headers=headers(token))
    assert r.status_code == 200
    assert r.json()["username"] == user.username
    assert r.json()["role"] == "consultant"
    stored = [row[0] for row in session.execute(sa_select(auth.ApiToken.token_hash))]
    assert token not in stored
    assert auth.hash_token(token) in stored


def test_revoked_token_is_refused(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    auth.revoke_token(session, token)
    session.commit()
    assert client.get("/api/v1/users/me", headers=headers(token)).status_code == 401


@pytest.mark.parametrize(("role", "status"), [("technician", 403), ("consultant", 403), ("customer", 403),
                                               ("manager", 201), ("admin", 201)])
def test_only_managers_and_admins_manage_the_catalog(client: TestClient, session, role: str, status: int
                                                      ) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, role)
    r = client.post("/api/v1/part-types", json={"part_number": f"X-{role}", "name": "x"}, headers=headers(token))
    assert r.status_code == status, r.text
    if status == 403:
        assert "may not" in r.json()["detail"]


def test_manager_cannot_create_admin_but_admin_can(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, manager = make_user(session, "manager")
    _, admin = make_user(session, "admin")
    body = {"username": "root2", "role": "admin"}
    assert client.post("/api/v1/users", json=body, headers=headers(manager)).status_code == 403
    r = client.post("/api/v1/users", json=body, headers=headers(admin))
    assert r.status_code == 201
    assert r.json()["token"].startswith("rfb_")


def test_mass_assignment_on_user_creation_is_ignored(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, admin = make_user(session, "admin")
    r = client.post("/api/v1/users", json={"username": "eve", "role": "technician", "id": 999, "active": False,
                                           "password_hash": "x"}, headers=headers(admin))
    assert r.status_code == 201
    assert r.json()["id"] != 999
    assert r.json()["active"] is True


def test_oversized_body_is_413(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "technician")
    r = client.post("/api/v1/scan", content=b"x" * (3 * 1024 * 1024), headers=headers(token) | {
        "content-type": "application/json"})
    assert r.status_code == 413


def test_app_refuses_an_unmigrated_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(SchemaOutOfDateError, match="refurb db upgrade"):
        create_app(Settings(database_url=url), start_background=False)


def test_app_starts_after_upgrade(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from refurb.migrations import runner

    url = f"sqlite:///{tmp_path / 'ok.db'}"
    engine: Engine = make_engine(url=url)
    runner.upgrade(engine)
    app = create_app(Settings(database_url=url), engine=engine, start_background=False)
    with TestClient(app) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/docs").status_code == 200


def test_non_finite_numbers_in_a_body_are_a_clear_422(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    _, token = make_user(session, "manager")
    for raw, word in ((b'{"part_number": "N-1", "name": "x", "new_price": NaN}', "NaN"),
                      (b'{"part_number": "N-1", "name": "x", "new_price": -Infinity}', "-Infinity"),
                      (b'{"part_number": "N-1", "name": "x", "new_price": 1e400}', "1e400")):
        r = client.post("/api/v1/part-types", content=raw,
                        headers=headers(token) | {"content-type": "application/json"})
        assert r.status_code == 422, r.text
        assert word in r.json()["detail"]
    assert client.get("/api/v1/part-types", headers=headers(token)).json()["count"] == 0
    r = client.post("/api/v1/part-types", content=b'{"part_number": ', headers=headers(token) | {
        "content-type": "application/json"})
    assert r.status_code == 422
