"""Telemetry commands: ``refurb ingest [stats]``, ``refurb telemetry import|retention``,
``refurb robots credentials``, ``refurb mqtt acl``."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from refurb.config import get_settings

ingest_app = typer.Typer(help="MQTT ingest worker: `refurb ingest` runs it, `refurb ingest stats` reports.")
telemetry_app = typer.Typer(no_args_is_help=True, help="Telemetry data: historical import, retention.")
robots_app = typer.Typer(no_args_is_help=True, help="Robots: MQTT credentials.")
mqtt_app = typer.Typer(no_args_is_help=True, help="MQTT broker files: Mosquitto password file and ACL.")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _engine():  # type: ignore[no-untyped-def]
    from refurb.db import make_engine

    return make_engine(get_settings())


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@ingest_app.callback(invoke_without_command=True)
def ingest(ctx: typer.Context,
           topic: Annotated[list[str] | None, typer.Option(help="topic filter to subscribe (repeatable); "
                                                                "default refurb/v1/robots/# and v1/gateway/telemetry")
                            ] = None,
           client_id: Annotated[str | None, typer.Option(help="MQTT client id (default REFURB_MQTT_CLIENT_ID)")
                                ] = None,
           log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING")] = "INFO") -> None:
    """Run the ingest worker until SIGTERM/SIGINT (embedded broker when REFURB_MQTT_URL is unset)."""
    if ctx.invoked_subcommand is not None:
        return
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from refurb.app import SchemaOutOfDateError, check_schema
    from refurb.telemetry.broker import EmbeddedBroker
    from refurb.telemetry.ingest import IngestWorker

    settings = get_settings()
    engine = _engine()
    if settings.check_schema_on_start:
        try:
            check_schema(engine)
        except SchemaOutOfDateError as exc:
            _fail(str(exc))
    embedded = None
    url = settings.mqtt_url
    if url is None:
        try:
            embedded = EmbeddedBroker(settings.embedded_mqtt_port).start()
        except RuntimeError as exc:
            _fail(str(exc))
            return
        url = embedded.url
    try:
        IngestWorker(settings, engine, mqtt_url=url, client_id=client_id, topics=topic or None).run_until_signalled()
    finally:
        if embedded is not None:
            embedded.stop()


@ingest_app.command("stats")
def ingest_stats() -> None:
    """Print the ingest counters of every worker (received, stored, duplicates, quarantined, queue, lag)."""
    from refurb.db import session_scope
    from refurb.telemetry import service

    with session_scope(_engine()) as session:
        _print_json(service.ingest_stats(session))


@telemetry_app.command("import")
def telemetry_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                                          help="JSON array of rows or CSV serial,key,ts,value[,seq]")],
                     format: Annotated[str | None, typer.Option(help="json or csv; default from the suffix")] = None
                     ) -> None:
    """Import historical samples with device timestamps (any order; re-imports store nothing twice)."""
    from refurb.db import session_scope
    from refurb.errors import RefurbError
    from refurb.telemetry import service
    from refurb.telemetry.parsing import ParseLimits, parse_import_csv, parse_import_json

    kind = format or ("csv" if file.suffix.lower() == ".csv" else "json")
    if kind not in ("csv", "json"):
        _fail("--format must be json or csv")
    parse = parse_import_csv if kind == "csv" else parse_import_json
    result = parse(file.read_bytes(), received_at_ms=time.time_ns() // 1_000_000,
                   limits=ParseLimits(max_import_rows=10_000_000))
    try:
        with session_scope(_engine()) as session:
            summary = service.import_samples(session, result)
    except RefurbError as exc:
        _fail(exc.message)
        return
    typer.echo(f"{file}: {summary['rows']} rows, {summary['stored']} stored, {summary['duplicates']} duplicates, "
               f"{summary['rejected']} rejected")
    for rejection in summary["rejections"][:20]:
        typer.echo(f"  row {rejection['row']}: {rejection['reason']}: {rejection['detail']}", err=True)
    for serial, count in summary["unknown_robots"].items():
        typer.echo(f"  unknown robot {serial!r}: {count} samples not stored", err=True)


@telemetry_app.command("retention")
def telemetry_retention(
        older_than: Annotated[float | None, typer.Option("--older-than", help="days; default "
                                                         "REFURB_TELEMETRY_RETENTION_DAYS")] = None,
        interval_s: Annotated[int | None, typer.Option(help="aggregate bucket in seconds; default "
                                                       "REFURB_TELEMETRY_AGGREGATE_INTERVAL_S")] = None) -> None:
    """Keep per-interval aggregates and drop raw telemetry older than the given age."""
    from refurb.db import session_scope
    from refurb.errors import RefurbError
    from refurb.telemetry import service

    settings = get_settings()
    try:
        with session_scope(_engine()) as session:
            days = settings.telemetry_retention_days if older_than is None else older_than
            interval = settings.telemetry_aggregate_interval_s if interval_s is None else interval_s
            report = service.apply_retention(session, older_than_days=days, interval_s=interval)
    except RefurbError as exc:
        _fail(exc.message)
        return
    deleted = report["deleted"]
    typer.echo(f"before {report['cutoff'].isoformat()}: kept {report['aggregates_written']} aggregate buckets of "
               f"{report['interval_s']} s; deleted {deleted['samples']} samples, {deleted['waveform_blocks']} "
               f"waveform blocks, {deleted['seqs']} seq marks, {deleted['quarantine']} quarantine rows")


@robots_app.command("credentials")
def robots_credentials(robot: Annotated[str, typer.Argument(help="robot serial (or id)")]) -> None:
    """Issue a new MQTT password for a robot (username = serial); shown only this once."""
    from refurb.db import session_scope
    from refurb.errors import RefurbError
    from refurb.telemetry import service

    try:
        with session_scope(_engine()) as session:
            found, password = service.issue_robot_credentials(session, robot)
            serial = found.serial
    except RefurbError as exc:
        _fail(exc.message)
        return
    typer.echo(f"MQTT credentials for robot {serial} (the password is shown once, store it now):")
    typer.echo(f"  username: {serial}")
    typer.echo(f"  password: {password}")
    typer.echo(f"  topics:   refurb/v1/robots/{serial}/#")
    typer.echo("then run `refurb mqtt acl --out DIR` and reload Mosquitto (kill -HUP) to apply it", err=True)


@mqtt_app.command("acl")
def mqtt_acl(out: Annotated[Path, typer.Option("--out", help="directory for passwd, acl and refurb.conf")]) -> None:
    """Write a Mosquitto password file and ACL: each robot publishes only under refurb/v1/robots/<serial>/."""
    from refurb.db import session_scope
    from refurb.telemetry import broker, service
    from refurb.telemetry.ingest import parse_mqtt_url

    settings = get_settings()
    user, password = broker.INGEST_USER, None
    if settings.mqtt_url:
        address = parse_mqtt_url(settings.mqtt_url)
        user, password = address.username or user, address.password
    with session_scope(_engine()) as session:
        robots = service.mqtt_password_entries(session)
    written = broker.write_mosquitto_files(out, robots, ingest_user=user, ingest_password=password,
                                           shared_group=settings.mqtt_shared_group)
    typer.echo(f"wrote {written['passwd']} ({written['robots']} robots + ingest user {user!r}), {written['acl']}, "
               f"{written['conf']}")
    if written["generated_ingest_password"]:
        typer.echo(f"ingest user password (shown once): {written['generated_ingest_password']}")
        typer.echo(f"  set REFURB_MQTT_URL=mqtt://{user}:{written['generated_ingest_password']}@<broker>:1883")
