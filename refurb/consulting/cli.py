"""`refurb tickets ...`: list, show and close tickets, and run the SLA check from cron."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer

tickets_app = typer.Typer(no_args_is_help=True, help="Consulting tickets: list, show, close, SLA check.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _context(ctx: typer.Context) -> tuple[Any, Any]:
    """(engine, settings): from ctx.obj when a caller (a test) passes them, else from the environment."""
    obj = ctx.obj or {}
    from refurb.config import get_settings
    from refurb.db import make_engine

    settings = obj.get("settings") or get_settings()
    engine = obj.get("engine") or make_engine(settings)
    return engine, settings


@contextmanager
def _session(ctx: typer.Context) -> Iterator[tuple[Any, Any]]:
    """A session committed once; a refused operation prints its reason and exits 1 (nothing is applied)."""
    from refurb.db import session_scope
    from refurb.errors import RefurbError

    engine, settings = _context(ctx)
    try:
        with session_scope(engine) as session:
            yield session, settings
    except RefurbError as exc:
        _fail(exc.message)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


@tickets_app.command("list")
def list_cmd(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="'open' or states, comma-separated")] = "open",
    assignee: Annotated[str | None, typer.Option(help="a user id or 'none'")] = None,
    breached: Annotated[bool, typer.Option("--breached", help="only tickets past an SLA target")] = False,
    sort: Annotated[str, typer.Option(help="due or created")] = "due",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """List tickets, soonest due first."""
    from refurb.consulting import service

    with _session(ctx) as (session, _):
        rows, count = service.list_tickets(session, viewer=None, state=state or None, assignee=assignee,
                                           breached=True if breached else None, sort=sort, limit=limit)
        typer.echo(f"{count} ticket(s)" + (f", showing {len(rows)}" if len(rows) < count else ""))
        for t in service.to_public(session, rows, viewer=None):
            flag = " BREACHED" if t.breached else (" paused" if t.sla_paused else "")
            typer.echo(f"#{t.id:<5} {t.state:<16} {t.priority:<7} {t.category:<15} due {_when(t.due_at)}{flag}  "
                       f"{t.title}")


@tickets_app.command("show")
def show_cmd(ctx: typer.Context, ticket_id: int) -> None:
    """Show one ticket with its links, comments (internal ones marked), verdicts, events and SLA."""
    from refurb.consulting import service

    with _session(ctx) as (session, settings):
        ticket = service.get_ticket(session, ticket_id, viewer=None)
        t = service.to_public(session, [ticket], viewer=None)[0]
        typer.echo(f"#{t.id} {t.title}")
        typer.echo(f"  state {t.state}, {t.priority} priority, {t.category}, assignee {t.assignee_id or '-'}, "
                   f"organisation {t.requester_org_id or '-'}, source {t.source}")
        typer.echo(f"  opened {_when(t.created_at)}, first response {_when(t.first_response_at)}, "
                   f"resolved {_when(t.resolved_at)}, closed {_when(t.closed_at)}")
        if t.description:
            typer.echo("  " + t.description.replace("\n", "\n  "))
        if t.links:
            typer.echo("  links: " + ", ".join(f"{link.kind} {link.target_id}" for link in t.links))
        status = service.sla_view(session, ticket, settings=settings)
        typer.echo(f"  SLA {status.level}{' (paused)' if status.paused else ''}: response due "
                   f"{_when(status.response_due_at)}, resolution due {_when(status.resolution_due_at)}, "
                   f"{status.fraction_used:.0%} used, escalation level {status.escalation_level}")
        if t.resolution_summary:
            typer.echo(f"  resolution: {t.resolution_summary}")
        for v in service.verdicts_for_ticket(session, ticket):
            typer.echo(f"  verdict: {v.verdict} on {v.target_kind} {v.target_id} by {v.decided_by}"
                       + (f" (part events {v.part_event_ids})" if v.part_event_ids else ""))
        for c in service.list_comments(session, ticket, viewer=None):
            typer.echo(f"  [{_when(c.created_at)}] {c.author}{' (internal)' if c.internal else ''}: {c.body}")
        for ev in service.list_events(session, ticket):
            move = f" {ev.from_state or ''}->{ev.to_state}" if ev.to_state else ""
            typer.echo(f"  event {ev.seq}: {ev.kind}{move} by {ev.actor} at {_when(ev.at)}")


def _parse_verdict(text: str) -> Any:
    from pydantic import ValidationError as PydanticValidationError

    from refurb.consulting.models import VerdictCreate

    bits = text.split(":")
    if len(bits) not in (3, 4) or bits[0] not in ("part", "part_type", "robot") or not bits[1].isdigit():
        _fail(f"bad --verdict {text!r}: use KIND:ID:VERDICT[:SUB_PART_ID], e.g. part:12:quarantine, "
              "part_type:3:release, part:12:require_replacement:34")
    payload: dict[str, Any] = {f"{bits[0]}_id": int(bits[1]), "verdict": bits[2]}
    if len(bits) == 4:
        payload["sub_part_id"] = int(bits[3]) if bits[3].isdigit() else bits[3]
    try:
        return VerdictCreate(**payload)
    except PydanticValidationError as exc:
        _fail(f"bad --verdict {text!r}: {exc.errors()[0]['msg']}")


@tickets_app.command("close")
def close_cmd(
    ctx: typer.Context,
    ticket_id: int,
    resolution: Annotated[str, typer.Option(help="the resolution summary")],
    as_user: Annotated[str, typer.Option("--as", help="username closing it (the assignee or a manager)")],
    verdict: Annotated[list[str] | None, typer.Option(help="KIND:ID:VERDICT[:SUB_PART_ID], repeatable")] = None,
) -> None:
    """Close a ticket with a resolution and verdicts (all applied, or none)."""
    from refurb.consulting import service
    from refurb.consulting.models import CloseRequest

    verdicts = [_parse_verdict(v) for v in verdict or []]
    if len(resolution) > 4000:
        _fail("the resolution is longer than 4000 characters")
    with _session(ctx) as (session, settings):
        actor = service.find_user(session, as_user)
        ticket = service.get_ticket(session, ticket_id, viewer=actor, for_update=True)
        ticket, rows = service.close_ticket(session, ticket, CloseRequest(resolution=resolution, verdicts=verdicts),
                                            actor=actor, settings=settings)
        typer.echo(f"closed ticket #{ticket.id} with {len(rows)} verdict(s)")
        for row in rows:
            typer.echo(f"  {row.verdict} on {row.target_kind} {row.target_id}: part events {row.part_event_ids}")


@tickets_app.command("check-sla")
def check_sla_cmd(
    ctx: typer.Context,
    now: Annotated[datetime | None, typer.Option(help="evaluate at this time (ISO, with zone); default now",
                                                 formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"])] = None,
) -> None:
    """Refresh SLA figures and record warnings and escalations, each once (safe to run from cron)."""
    from refurb.consulting import service

    if now is not None and now.tzinfo is None:
        _fail("--now needs a time zone, e.g. 2026-06-08T09:00:00+0900")
    with _session(ctx) as (session, settings):
        report = service.check_sla(session, settings=settings, now=now)
    typer.echo(f"checked {report.checked} open ticket(s): {report.warnings} warning(s), "
               f"{report.escalations} escalation(s) recorded; {report.already_recorded} already recorded, "
               f"{report.errors} error(s)")
    if report.errors:
        raise typer.Exit(1)
