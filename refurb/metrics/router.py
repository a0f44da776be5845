"""REST routes of the metrics domain: reuse scores, reliability, circularity, KPIs and part passports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from refurb.auth import CurrentUser, ManagerUser, StaffUser
from refurb.config import Settings
from refurb.db import SessionDep
from refurb.metrics import scores, service
from refurb.metrics.models import MCIRequest, MCIResponse, PartScoreHistory, PartScorePublic, RecomputeResult

router = APIRouter()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# --- reuse scores -----------------------------------------------------------------------------------------------


@router.get("/parts/{part_id}/score", response_model=PartScorePublic, tags=["scores"])
def part_score(part_id: int, request: Request, session: SessionDep, user: CurrentUser) -> Any:
    """The part's reuse score 0-100, recommended disposition, hold/cap flags, reasons and per-factor explanation."""
    return scores.part_score(session, part_id, viewer=user, settings=_settings(request))


@router.get("/parts/{part_id}/score/history", response_model=PartScoreHistory, tags=["scores"])
def score_history(part_id: int, session: SessionDep, user: CurrentUser, offset: int = Query(0, ge=0),
                  limit: int = Query(50, ge=1, le=500)) -> PartScoreHistory:
    """Every stored snapshot of the part's score with the inputs it came from, newest first."""
    rows, count = scores.score_history(session, part_id, viewer=user, offset=offset, limit=limit)
    return PartScoreHistory(data=[PartScorePublic(**r) for r in rows], count=count)


@router.post("/scores/recompute", response_model=RecomputeResult, tags=["scores"])
def recompute(request: Request, session: SessionDep, _: ManagerUser) -> RecomputeResult:
    """Refit every part type's reliability model and rescore every part (vectorised); new snapshots only where the
    inputs changed."""
    stats = scores.recompute_all(session, settings=_settings(request))
    return RecomputeResult(parts=stats.parts, changed=stats.changed, unchanged=stats.parts - stats.changed,
                           part_types_fitted=stats.part_types_fitted, config_version=stats.config_version,
                           timings_s={k: round(v, 4) for k, v in stats.timings.items()})


# --- reliability ------------------------------------------------------------------------------------------------


@router.get("/part-types/{part_type_id}/reliability", tags=["reliability"])
def part_type_reliability(part_type_id: int, request: Request, session: SessionDep, _: StaffUser,
                          min_failures: int | None = Query(None, ge=2, le=10_000,
                                                           description="default REFURB_RELIABILITY_MIN_FAILURES"),
                          confidence: float = Query(0.95, gt=0, lt=1)) -> dict[str, Any]:
    """Weibull fit (shape, scale, B10, MTTF, CIs) on operating hours with right censoring; 422 with too few
    failures."""
    return service.part_type_reliability(session, part_type_id, settings=_settings(request),
                                         min_failures=min_failures, confidence=confidence)


@router.get("/robots/{robot_id}/reliability", tags=["reliability"])
def robot_reliability(robot_id: int, request: Request, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """MTBF, MTTR and availability of a (refurbished) robot in operating hours."""
    return service.robot_reliability(session, robot_id, viewer=user, settings=_settings(request))


# --- circularity ------------------------------------------------------------------------------------------------


@router.post("/circularity/mci", response_model=MCIResponse, tags=["circularity"])
def mci_calculator(body: MCIRequest, _: CurrentUser) -> dict[str, float]:
    """Material Circularity Indicator (Ellen MacArthur Foundation & Granta 2015) of a product's components."""
    return service.calculate_mci(body)


@router.get("/part-types/{part_type_id}/circularity", tags=["circularity"])
def part_type_circularity(part_type_id: int, session: SessionDep, _: StaffUser) -> dict[str, Any]:
    """MCI of one unit of the part type: as new, as remanufactured and as the center supplies it."""
    return service.part_type_circularity(session, part_type_id)


@router.get("/robots/{robot_id}/circularity", tags=["circularity"])
def robot_circularity(robot_id: int, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Product-level MCI of a robot from the parts installed in it (reused parts count as reused feedstock)."""
    return service.robot_circularity(session, robot_id, viewer=user)


@router.get("/circularity", tags=["circularity"])
def circularity_kpis(request: Request, session: SessionDep, user: CurrentUser,
                     start: datetime | None = Query(None, description="ISO time with zone; intakes from"),
                     end: datetime | None = Query(None, description="ISO time with zone; intakes before"),
                     org: int | None = Query(None, description="organisation id; customers: always their own")
                     ) -> dict[str, Any]:
    """Remanufacturing KPIs and circularity figures over a period (definitions in docs/api.md (metrics))."""
    return service.kpis(session, viewer=user, start=start, end=end, org_id=org, settings=_settings(request))


# --- passport ---------------------------------------------------------------------------------------------------


@router.get("/parts/{part_id}/passport", tags=["passport"])
def part_passport(part_id: int, request: Request, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """One JSON document for the serial, ready for a Digital Product Passport."""
    return service.passport(session, part_id, viewer=user, settings=_settings(request))
