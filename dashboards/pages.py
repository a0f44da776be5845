"""Thin routes of the center dashboard: metrics service -> pure figure builders -> HTML (and a standalone export)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from dashboards import figures
from refurb import auth
from refurb.auth import Role
from refurb.db import SessionDep
from refurb.errors import ValidationError
from refurb.metrics import dashboard as dashboard_service
from refurb.web import PageUser, render, require_page_roles

router = APIRouter(include_in_schema=False)
STAFF = require_page_roles(Role.TECHNICIAN, Role.CONSULTANT, Role.MANAGER, Role.ADMIN)


def _day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a date like 2026-01-31, got {value!r}") from exc


def build_figures(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(id, title, figure) for every chart of the dashboard, from the plain data the service gathered."""
    out: list[tuple[str, str, Any]] = []
    intake = data["intake"]
    out.append(("intake", "Cores received and their outcome",
                figures.stacked_counts(intake["months"], intake["series"], title="Cores received per month",
                                       y_title="parts")))
    if data["flows"]:
        out.append(("sankey", "From intake through grade to disposition", figures.disposition_sankey(data["flows"])))
    rates = data["rates"]
    if rates["part_types"]:
        out.append(("rates", "Salvage and recovery rates per part type", figures.grouped_rates(
            rates["part_types"], {"salvage (count)": rates["salvage_by_count"],
                                  "recovery (count)": rates["recovery"]}, title="Salvage and recovery")))
    mci = data["robot_mci"]
    center = data["kpis"]["center_mci"]["value"]
    if mci["robots"]:
        out.append(("mci", "Material Circularity Indicator per robot", figures.bars_with_reference(
            mci["robots"], mci["mci"], reference=center, reference_name="center", title="MCI of rebuilt robots")))
    for fit in data["reliability"][:dashboard_service.PLOTTED_FITS]:
        heading = (f"Reliability of {fit['part_number']} (B10 {fit['b10_h']:,.0f} h, MTTF {fit['mttf_h']:,.0f} h; "
                   f"{fit['n_failures']} failures, {fit['n_censored']} running)")
        out.append((f"weibull-{fit['part_number']}", heading, figures.weibull_plot(
            shape=fit["shape"], scale=fit["scale_h"], failures_h=fit["failures_h"], title="Weibull fit")))
    sla = data["sla"]
    if sla["months"]:
        out.append(("sla", "SLA compliance of resolved tickets", figures.stacked_counts(
            sla["months"], {"met": sla["met"], "breached": sla["breached"]}, title="Tickets resolved per month",
            y_title="tickets")))
    return out


def dashboard_context(session: Any, user: Any, *, start: str | None, end: str | None, org: int | None,
                      settings: Any) -> dict[str, Any]:
    data = dashboard_service.center_dashboard(session, viewer=user, start=_day(start, "start"),
                                              end=_day(end, "end"), org_id=org, settings=settings)
    charts = [(cid, title, fig.to_json()) for cid, title, fig in build_figures(data)]
    orgs = [o for o in auth.list_organisations(session) if o.kind == "customer"]
    return {"k": data["kpis"], "sla": data["sla"], "charts": charts, "orgs": orgs, "start": start or "",
            "end": end or "", "org": org}


@router.get("/dashboard", response_class=HTMLResponse, dependencies=[STAFF])
def dashboard(request: Request, session: SessionDep, user: PageUser, start: str | None = None,
              end: str | None = None, org: int | None = None) -> HTMLResponse:
    context = dashboard_context(session, user, start=start, end=end, org=org, settings=request.app.state.settings)
    return render(request, "dashboard.html", **context, standalone=False)


def export_html(session: Any, user: Any, *, start: str | None, end: str | None, org: int | None, settings: Any
                ) -> str:
    """The center dashboard as one standalone HTML file (plotly.js inlined), for sharing offline."""
    from refurb.web import _plotly_js, templates

    context = dashboard_context(session, user, start=start, end=end, org=org, settings=settings)
    css = (Path(__file__).resolve().parents[1] / "refurb" / "static" / "app.css").read_text()
    html: str = templates.env.get_template("dashboard.html").render(
        **context, standalone=True, plotly_inline=_plotly_js().read_text(), user=None, nav=[])
    return html.replace('<link rel="stylesheet" href="/static/app.css">', f"<style>{css}</style>")
