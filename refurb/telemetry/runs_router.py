"""REST routes of test runs and alarms: parse, authorise, call one service function, shape the response.

Technicians and managers run tests; managers define templates and alarm rules; customers read their own robots'
runs and alarms (docs/api.md (Test runs)).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from refurb.auth import CurrentUser, ManagerUser, StaffUser, TechnicianUser
from refurb.config import Settings
from refurb.db import SessionDep
from refurb.telemetry import runs_service as service
from refurb.telemetry.runs import (
    AlarmPublic,
    AlarmRuleCreate,
    AlarmRulePublic,
    AlarmRulesPublic,
    AlarmsPublic,
    FailureReasonsPublic,
    RunState,
    TestKind,
    TestRunAbort,
    TestRunCreate,
    TestRunFinish,
    TestRunPublic,
    TestRunsPublic,
    TestTemplateCreate,
    TestTemplatePublic,
    TestTemplatesPublic,
)

router = APIRouter()
Offset = Query(0, ge=0)
Limit = Query(100, ge=1, le=500)


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(_settings)]


# --- templates ---------------------------------------------------------------------------------------------------


@router.post("/test-templates", response_model=TestTemplatePublic, status_code=201, tags=["test runs"])
def create_template(data: TestTemplateCreate, session: SessionDep, user: ManagerUser) -> Any:
    return service.create_template(session, data, actor=user)


@router.get("/test-templates", response_model=TestTemplatesPublic, tags=["test runs"])
def list_templates(session: SessionDep, _: StaffUser, robot_model: str | None = None, kind: TestKind | None = None,
                   offset: int = Offset, limit: int = Limit) -> TestTemplatesPublic:
    rows, count = service.list_templates(session, robot_model=robot_model, kind=kind, offset=offset, limit=limit)
    return TestTemplatesPublic(data=[TestTemplatePublic.model_validate(r) for r in rows], count=count)


@router.get("/test-templates/{template_id}", response_model=TestTemplatePublic, tags=["test runs"])
def read_template(template_id: int, session: SessionDep, _: StaffUser) -> Any:
    return service.get_template(session, template_id)


# --- runs --------------------------------------------------------------------------------------------------------


@router.post("/test-runs", response_model=TestRunPublic, status_code=201, tags=["test runs"])
def start_run(data: TestRunCreate, session: SessionDep, user: TechnicianUser) -> TestRunPublic:
    return service.run_public(session, service.start_run(session, data, actor=user))


@router.get("/test-runs", response_model=TestRunsPublic, tags=["test runs"])
def list_runs(session: SessionDep, user: CurrentUser, robot_id: int | None = None, state: RunState | None = None,
              template_id: int | None = None, offset: int = Offset, limit: int = Limit) -> TestRunsPublic:
    rows, count = service.list_runs(session, viewer=user, robot_id=robot_id, state=state, template_id=template_id,
                                    offset=offset, limit=limit)
    return TestRunsPublic(data=[service.run_public(session, r, with_checks=False) for r in rows], count=count)


@router.get("/test-runs/failure-reasons", response_model=FailureReasonsPublic, tags=["test runs"])
def failure_reasons(session: SessionDep, _: StaffUser, robot_model: str | None = None,
                    template_id: int | None = None, since: datetime | None = None,
                    until: datetime | None = None) -> FailureReasonsPublic:
    return service.failure_reasons(session, robot_model=robot_model, template_id=template_id, since=since,
                                   until=until)


@router.get("/test-runs/{run_id}", response_model=TestRunPublic, tags=["test runs"])
def read_run(run_id: int, session: SessionDep, user: CurrentUser) -> TestRunPublic:
    return service.run_public(session, service.get_run(session, run_id, viewer=user))


@router.post("/test-runs/{run_id}/finish", response_model=TestRunPublic, tags=["test runs"])
def finish_run(run_id: int, session: SessionDep, user: TechnicianUser, settings: SettingsDep,
               data: TestRunFinish | None = None) -> TestRunPublic:
    run = service.finish_run(session, service.get_run(session, run_id), actor=user,
                             window_end=data.window_end if data else None, settings=settings)
    return service.run_public(session, run)


@router.post("/test-runs/{run_id}/abort", response_model=TestRunPublic, tags=["test runs"])
def abort_run(run_id: int, session: SessionDep, user: TechnicianUser, data: TestRunAbort | None = None
              ) -> TestRunPublic:
    run = service.abort_run(session, service.get_run(session, run_id), actor=user,
                            reason=data.reason if data else "")
    return service.run_public(session, run)


# --- alarms ------------------------------------------------------------------------------------------------------


@router.post("/alarm-rules", response_model=AlarmRulePublic, status_code=201, tags=["alarms"])
def create_alarm_rule(data: AlarmRuleCreate, session: SessionDep, _: ManagerUser) -> Any:
    return service.create_alarm_rule(session, data)


@router.get("/alarm-rules", response_model=AlarmRulesPublic, tags=["alarms"])
def list_alarm_rules(session: SessionDep, _: StaffUser, robot_model: str | None = None, enabled: bool | None = None,
                     offset: int = Offset, limit: int = Limit) -> AlarmRulesPublic:
    rows, count = service.list_alarm_rules(session, robot_model=robot_model, enabled=enabled, offset=offset,
                                           limit=limit)
    return AlarmRulesPublic(data=[AlarmRulePublic.model_validate(r) for r in rows], count=count)


@router.get("/alarms", response_model=AlarmsPublic, tags=["alarms"])
def list_alarms(session: SessionDep, user: CurrentUser, robot_id: int | None = None, active: bool | None = None,
                rule_id: int | None = None, offset: int = Offset, limit: int = Limit) -> AlarmsPublic:
    rows, count = service.list_alarms(session, viewer=user, robot_id=robot_id, active=active, rule_id=rule_id,
                                      offset=offset, limit=limit)
    return AlarmsPublic(data=[AlarmPublic.model_validate(service.alarm_public(a)) for a in rows], count=count)
