"""Migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from refurb.db import make_engine
from refurb.migrations import runner
from refurb.models import metadata


def _diff(engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        return compare_metadata(ctx, metadata)


def test_sqlite_upgrade_matches_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(url=f"sqlite:///{tmp_path / 'm.db'}")
    assert runner.current_revision(engine) is None
    before, after = runner.upgrade(engine)
    assert (before, after) == (None, runner.head_revision())
    assert _diff(engine) == []
    assert runner.upgrade(engine) == (after, after)


@pytest.mark.postgres
@pytest.mark.skipif(not os.environ.get("REFURB_TEST_DATABASE_URL"), reason="REFURB_TEST_DATABASE_URL not set")
def test_postgres_upgrade_matches_models() -> None:
    url = os.environ["REFURB_TEST_DATABASE_URL"]
    schema = f"refurb_migrations_{os.getpid()}"
    admin = make_engine(url=url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url=url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        runner.upgrade(engine)
        assert runner.current_revision(engine) == runner.head_revision()
        assert _diff(engine) == []
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
