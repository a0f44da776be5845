"""The command line as an operator uses it: upgrade, users, CSV import/export, against a SQLite file."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from refurb.cli import app
from refurb.config import get_settings


@pytest.fixture
def cli(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REFURB_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args), catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def test_upgrade_users_import_export(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = cli("db", "upgrade")
    assert r.exit_code == 0
    assert "upgraded (empty) -> " in r.output
    assert "already at" in cli("db", "upgrade").output
    r = cli("users", "create", "boss", "--role", "admin")
    assert r.exit_code == 0
    token = re.search(r"(rfb_\S+)", r.output).group(1)  # type: ignore[union-attr]
    assert len(token) > 40
    r = cli("users", "create", "alice", "--role", "customer")
    assert r.exit_code == 1
    assert "needs an organisation" in r.output
    r = cli("users", "create", "alice", "--role", "customer", "--org", "Acme")
    assert r.exit_code == 0
    assert cli("users", "create", "alice", "--role", "customer", "--org", "Acme").exit_code == 1
    r = cli("users", "create", "x", "--role", "wizard")
    assert r.exit_code == 1
    assert "unknown role" in r.output

    from refurb.db import make_engine, session_scope
    from refurb.parts import service
    from refurb.parts.models import PartTypeCreate

    with session_scope(make_engine(get_settings())) as s:
        service.create_part_type(s, PartTypeCreate(part_number="RV-80E", name="reducer"))
    bad = tmp_path / "bad.csv"
    bad.write_text("serial,part_number\nA,RV-80E\nB,NOPE\n")
    r = cli("parts", "import", str(bad))
    assert r.exit_code == 1
    assert "line 3: unknown part_number 'NOPE'" in r.output
    good = tmp_path / "good.csv"
    good.write_text("serial,part_number\nA,RV-80E\nB,RV-80E\n")
    r = cli("parts", "import", str(good))
    assert r.exit_code == 0
    assert "imported 2 parts" in r.output
    r = cli("parts", "export")
    assert r.output.splitlines()[0].startswith("id,serial,part_number,status")
    assert len(r.output.splitlines()) == 3


def test_serve_refuses_an_unmigrated_database(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("serve", "--port", "0")
    assert r.exit_code == 1
    assert "refurb db upgrade" in r.output
