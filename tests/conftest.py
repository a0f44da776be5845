"""Shared fixtures: every database test runs on SQLite and, when REFURB_TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from refurb.app import create_app
from refurb.config import Settings
from refurb.db import make_engine
from refurb.models import metadata

PG_URL = os.environ.get("REFURB_TEST_DATABASE_URL")
if os.environ.get("REFURB_TEST_REQUIRE_SERVICES") and not PG_URL:
    raise RuntimeError("REFURB_TEST_REQUIRE_SERVICES is set but REFURB_TEST_DATABASE_URL is not: "
                       "CI must run the suite on PostgreSQL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    assert PG_URL
    schema = f"refurb_test_{os.getpid()}"  # one schema per test process: parallel runs never share tables
    admin = make_engine(url=PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url=PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    metadata.create_all(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def database(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Engine]:
    """Yield an empty database of the requested backend: SQLite at `sqlite_url`, or this process's PostgreSQL
    schema, emptied again afterwards."""
    if request.param == "sqlite":
        eng = make_engine(url=sqlite_url)
        metadata.create_all(eng)
        yield eng
        eng.dispose()
        return
    eng = request.getfixturevalue("pg_engine")
    yield eng
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A fresh, empty database with the current schema."""
    yield from database(request, "sqlite://")


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="sqlite://", check_schema_on_start=False, ingest_enabled=False,
                    public_base_url="http://testserver")


@pytest.fixture
def app(engine: Engine, settings: Settings):  # type: ignore[no-untyped-def]
    return create_app(settings, engine=engine, start_background=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
