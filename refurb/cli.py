"""The `refurb` command line (typer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from refurb.config import get_settings
from refurb.consulting.cli import tickets_app
from refurb.metrics.cli import score_app
from refurb.telemetry.cli import ingest_app, mqtt_app, robots_app, telemetry_app

app = typer.Typer(no_args_is_help=True, help="refurb: the tracker that runs a robot remanufacturing center.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="User accounts and API tokens.")
parts_app = typer.Typer(no_args_is_help=True, help="Parts: CSV import and export.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(parts_app, name="parts")
app.add_typer(tickets_app, name="tickets")
app.add_typer(score_app, name="score")
app.add_typer(ingest_app, name="ingest")
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(robots_app, name="robots")
app.add_typer(mqtt_app, name="mqtt")


def _engine():  # type: ignore[no-untyped-def]
    from refurb.db import make_engine

    return make_engine(get_settings())


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the schema or upgrade it to the newest migration."""
    from refurb.migrations import runner

    engine = _engine()
    before, after = runner.upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    if before == after:
        typer.echo(f"{url}: schema already at {after}")
    else:
        typer.echo(f"{url}: schema upgraded {before or '(empty)'} -> {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and of the code."""
    from refurb.migrations import runner

    typer.echo(f"database: {runner.current_revision(_engine()) or '(empty)'}; code: {runner.head_revision()}")


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[str, typer.Option(help="technician, consultant, manager, admin or customer")],
    org: Annotated[str | None, typer.Option(help="organisation (required for customers)")] = None,
    full_name: Annotated[str, typer.Option(help="display name")] = "",
    specialty: Annotated[list[str] | None, typer.Option(help="consultant specialty (repeatable)")] = None,
    password: Annotated[str | None, typer.Option(help="password for the web login (optional)")] = None,
) -> None:
    """Create a user and print its API token (shown only this once)."""
    from pydantic import ValidationError as PydanticValidationError

    from refurb import auth
    from refurb.db import session_scope
    from refurb.errors import RefurbError

    if role not in {r.value for r in auth.Role}:
        _fail(f"unknown role {role!r}; choose one of: {', '.join(r.value for r in auth.Role)}")
    try:
        data = auth.UserCreate(username=username, role=auth.Role(role), organisation=org, full_name=full_name,
                               specialties=specialty or [], password=password)
    except PydanticValidationError as exc:
        _fail("invalid user: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    try:
        with session_scope(_engine()) as session:
            user, token = auth.create_user(session, data)
            typer.echo(f"created {user.role} '{user.username}' (id {user.id})")
            typer.echo(f"API token (shown once, store it now): {token}")
    except RefurbError as exc:
        _fail(exc.message)


@users_app.command("token")
def users_token(username: str) -> None:
    """Issue an additional API token for an existing user."""
    from refurb import auth
    from refurb.db import session_scope

    with session_scope(_engine()) as session:
        user = auth.get_user_by_username(session, username)
        if user is None:
            _fail(f"no user '{username}'")
            return
        typer.echo(f"API token for '{username}' (shown once): {auth.issue_token(session, user=user, name='cli')}")


@parts_app.command("import")
def parts_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]) -> None:
    """Import parts from a CSV file (all or nothing; bad rows are listed with their line numbers)."""
    from refurb.db import session_scope
    from refurb.errors import RefurbError
    from refurb.parts import service

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        _fail(f"{file} is not UTF-8 text")
    try:
        with session_scope(_engine()) as session:
            parts = service.import_parts_csv(session, text)
            typer.echo(f"imported {len(parts)} parts from {file}")
    except RefurbError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        for err in exc.extra.get("errors", []):
            typer.echo(f"  line {err['line']}: {err['error']}", err=True)
        raise typer.Exit(1) from None


@parts_app.command("export")
def parts_export(out: Annotated[Path | None, typer.Option(help="file to write; default stdout")] = None) -> None:
    """Export all parts as CSV."""
    from refurb.db import session_scope
    from refurb.parts import service

    with session_scope(_engine()) as session:
        text = service.export_parts_csv(session)
    if out:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {text.count(chr(10)) - 1} parts to {out}", err=True)
    else:
        sys.stdout.write(text)


dashboards_app = typer.Typer(no_args_is_help=True, help="Center dashboard.")
app.add_typer(dashboards_app, name="dashboards")


@dashboards_app.command("export")
def dashboards_export(
    out: Annotated[Path, typer.Option(help="folder to write center-dashboard.html into")],
    start: Annotated[str | None, typer.Option(help="first day, e.g. 2026-01-01")] = None,
    end: Annotated[str | None, typer.Option(help="day after the last, e.g. 2026-07-01")] = None,
    org: Annotated[int | None, typer.Option(help="customer organisation id")] = None,
) -> None:
    """Write the center dashboard as a standalone HTML file (works offline, plotly.js inlined)."""
    from dashboards.pages import export_html
    from refurb import auth
    from refurb.db import session_scope
    from refurb.errors import RefurbError

    out.mkdir(parents=True, exist_ok=True)
    viewer = auth.User(username="export", role=auth.Role.ADMIN)  # the center's own view; never stored
    try:
        with session_scope(_engine()) as session:
            html = export_html(session, viewer, start=start, end=end, org=org, settings=get_settings())
    except RefurbError as exc:
        _fail(exc.message)
        return
    target = out / "center-dashboard.html"
    target.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {target} ({len(html) // 1024} KiB)")


def _serve(host: str, port: int) -> None:
    import uvicorn

    from refurb.app import SchemaOutOfDateError, create_app

    try:
        web = create_app(get_settings())
    except SchemaOutOfDateError as exc:
        _fail(str(exc))
        return
    typer.echo(f"refurb serving on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(web, host=host, port=port, log_level="info")


@app.command()
def serve(host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port")] = 8000) -> None:
    """Run the web app and API (and the ingest worker unless REFURB_INGEST_ENABLED=false)."""
    _serve(host, port)


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000,
         live: Annotated[bool, typer.Option(help="simulated robots streaming on the test benches")] = True) -> None:
    """Upgrade the database, seed a demo center (once), start simulated robots and serve it all."""
    from refurb import demo as demo_mod
    from refurb.migrations import runner

    engine = _engine()
    runner.upgrade(engine)
    typer.echo("seeding the demo center (first start only) ...")
    logins = demo_mod.seed(engine)
    typer.echo(f"web login: any user below with password '{demo_mod.DEMO_PASSWORD}'; API tokens for scripts:")
    for role, username, token in logins:
        typer.echo(f"  {role:<11} {username:<10} {token}")
    benches = demo_mod.LiveBenches(engine, get_settings()).start() if live else None
    if benches is not None:
        for serial, faults in benches.robots:
            typer.echo(f"  test bench: robot {serial} streaming live ({', '.join(faults) or 'healthy'})")
    try:
        _serve(host, port)
    finally:
        if benches is not None:
            benches.stop()
        typer.echo("refurb demo stopped")


if __name__ == "__main__":  # pragma: no cover
    app()
