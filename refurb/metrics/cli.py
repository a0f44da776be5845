"""`refurb score ...`: recompute reuse scores from cron or after a configuration change."""

from __future__ import annotations

from typing import Annotated, Any

import typer

score_app = typer.Typer(no_args_is_help=True, help="Reuse scores: recompute (vectorised over every part).")


@score_app.command("recompute")
def recompute(
    ctx: typer.Context,
    all_parts: Annotated[bool, typer.Option("--all", help="refit every reliability model and rescore every part "
                                                         "(default: only parts without a current score)")] = False,
) -> None:
    """Recompute reuse scores; a snapshot is stored only where the inputs changed."""
    from refurb.config import get_settings
    from refurb.db import make_engine, session_scope
    from refurb.errors import RefurbError
    from refurb.metrics import scores

    obj: dict[str, Any] = ctx.obj or {}
    settings = obj.get("settings") or get_settings()
    engine = obj.get("engine") or make_engine(settings)
    try:
        with session_scope(engine) as session:
            run = scores.recompute_all if all_parts else scores.recompute_stale
            stats = run(session, settings=settings)
    except RefurbError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    timings = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in stats.timings.items())
    typer.echo(f"scored {stats.parts} parts: {stats.changed} new snapshots, {stats.parts - stats.changed} unchanged; "
               f"{stats.part_types_fitted} reliability models fitted; config {stats.config_version}"
               + (f" ({timings})" if timings else ""))
