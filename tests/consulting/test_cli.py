"""`refurb tickets list|show|close|check-sla` through typer's CliRunner, on the test database."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from refurb.cli import app
from refurb.config import Settings
from refurb.consulting import service
from refurb.consulting.models import CommentCreate
from tests.consulting.helpers import kst, move, open_ticket, part_in_process
from tests.factories import make_part, make_user

runner = CliRunner()


@pytest.fixture
def cli(engine: Engine, settings: Settings):  # type: ignore[no-untyped-def]
    def run(*args: str) -> Any:
        return runner.invoke(app, ["tickets", *args], obj={"engine": engine, "settings": settings})
    return run


def test_list_and_show(cli, session: Session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    customer = make_user(session, "customer")[0]
    kim = make_user(session, "consultant", username="kim-cli")[0]
    part = make_part(session)
    t = open_ticket(session, customer, settings, title="J3 grinding", priority="urgent", part_ids=[part.id])
    open_ticket(session, customer, settings, title="J4 leak", priority="low")
    move(session, t, "assigned", kim, settings, kst(2026, 6, 8, 10, 5))
    service.add_comment(session, t, CommentCreate(body="supplier batch suspect", internal=True), author=kim,
                        settings=settings, now=kst(2026, 6, 8, 10, 10))
    session.commit()
    r = cli("list")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "2 ticket(s)"
    assert "J3 grinding" in lines[1]
    assert "BREACHED" in lines[1]  # opened in June 2026, long past its 1 h response target
    assert "J4 leak" in lines[2]
    assert "1 ticket(s)" in cli("list", "--assignee", str(kim.id)).output
    r = cli("show", str(t.id))
    assert r.exit_code == 0, r.output
    assert f"#{t.id} J3 grinding" in r.output
    assert f"part {part.id}" in r.output
    assert "kim-cli (internal): supplier batch suspect" in r.output
    assert "event 2: transition new->assigned" in r.output
    r = cli("show", "999999")
    assert r.exit_code == 1
    assert "ticket 999999 not found" in r.output


def test_close_with_verdicts(cli, session: Session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    kim = make_user(session, "consultant", username="kim-close")[0]
    other = make_user(session, "consultant", username="lee-close", specialties=["testing"])[0]
    part = part_in_process(session)
    t = open_ticket(session, make_user(session, "manager")[0], settings, part_ids=[part.id])
    move(session, t, "assigned", kim, settings, kst(2026, 6, 8, 10, 5))
    r = cli("close", str(t.id), "--as", other.username, "--resolution", "x", "--verdict", f"part:{part.id}:scrap")
    assert r.exit_code == 1
    assert "only the assignee or a manager" in r.output
    r = cli("close", str(t.id), "--as", kim.username, "--resolution", "x", "--verdict", "part:abc:scrap")
    assert r.exit_code == 1
    assert "KIND:ID:VERDICT" in r.output
    r = cli("close", str(t.id), "--as", kim.username, "--resolution", "worn out",
            "--verdict", f"part:{part.id}:quarantine")
    assert r.exit_code == 0, r.output
    assert f"closed ticket #{t.id} with 1 verdict(s)" in r.output
    session.expire_all()
    assert service.get_ticket(session, t.id, viewer=None).state == "closed"
    from refurb.parts import service as parts_service

    assert parts_service.get_part(session, part.id).quarantined


def test_refused_close_applies_nothing(cli, session: Session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    kim = make_user(session, "consultant", username="kim-refused")[0]
    fine, fresh = part_in_process(session), make_part(session)
    t = open_ticket(session, kim, settings, part_ids=[fine.id, fresh.id])
    move(session, t, "assigned", kim, settings, kst(2026, 6, 8, 10, 5))
    r = cli("close", str(t.id), "--as", kim.username, "--resolution", "x", "--verdict", f"part:{fine.id}:scrap",
            "--verdict", f"part:{fresh.id}:recycle")
    assert r.exit_code == 1
    assert "nothing was applied" in r.output
    session.expire_all()
    from refurb.parts import service as parts_service

    assert parts_service.get_part(session, fine.id).status == "inspected"
    assert service.get_ticket(session, t.id, viewer=None).state == "assigned"


def test_check_sla(cli, session: Session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    customer = make_user(session, "customer")[0]
    t = open_ticket(session, customer, settings, priority="high")  # Mon 10:00, 4 h to respond
    r = cli("check-sla", "--now", "2026-06-08T13:30:00+0900")
    assert r.exit_code == 0, r.output
    assert "checked 1 open ticket(s): 1 warning(s), 0 escalation(s)" in r.output
    r = cli("check-sla", "--now", "2026-06-08T13:40:00+0900")
    assert "0 warning(s), 0 escalation(s)" in r.output
    r = cli("check-sla", "--now", "2026-06-08T18:00:00+0900")
    assert "0 warning(s), 2 escalation(s)" in r.output
    session.expire_all()
    assert service.get_ticket(session, t.id, viewer=None).escalation_level == 3
    assert cli("check-sla", "--now", "2026-06-08T13:30:00").exit_code != 0  # a time without a zone
