"""Alarm rules on live samples: raised after N consecutive samples or a duration, cleared with hysteresis, state kept
between batches, listed; critical alarms open a ticket."""

from __future__ import annotations

import pytest
from pydantic import ValidationError as PydanticValidationError
from sqlmodel import Session

from refurb.config import Settings
from refurb.parts import service as parts_service
from refurb.telemetry import runs_service
from refurb.telemetry.parsing import ScalarSample
from refurb.telemetry.runs import AlarmRuleCreate
from tests.factories import make_robot, make_user

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def rule(session: Session, **overrides: object):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {"name": "motor hot", "key": "j*_temp_c", "comparison": ">", "threshold": 80.0,
                               "n_consecutive": 3, "clear_threshold": 75.0}
    data.update(overrides)
    created = runs_service.create_alarm_rule(session, AlarmRuleCreate(**data))
    session.commit()
    return created


def series(key: str, values: list[float], *, start_ms: int = T0, step_ms: int = 1000) -> list[tuple[str, int, float]]:
    return [(key, start_ms + i * step_ms, v) for i, v in enumerate(values)]


def test_raised_after_n_consecutive_and_cleared_with_hysteresis(session: Session) -> None:
    robot = make_robot(session)
    rule(session)
    # two breaches, a dip (resets the count), then three in a row: raised on the third
    changes = runs_service.evaluate_alarms(session, robot.id, series("j3_temp_c", [81, 82, 79, 81, 82, 83, 84]))
    session.commit()
    assert len(changes.raised) == 1
    assert not changes.cleared
    alarm = changes.raised[0]
    assert (alarm.key, alarm.value, alarm.raised_ts_ms) == ("j3_temp_c", 83, T0 + 5000)
    assert alarm.cleared_at is None
    assert alarm.peak_value == 84
    # 78 is below the threshold but above the clear threshold: still active (hysteresis)
    changes = runs_service.evaluate_alarms(session, robot.id, series("j3_temp_c", [78, 76], start_ms=T0 + 7000))
    assert not changes.cleared
    changes = runs_service.evaluate_alarms(session, robot.id, series("j3_temp_c", [74.5], start_ms=T0 + 9000))
    session.commit()
    assert [a.id for a in changes.cleared] == [alarm.id]
    assert (alarm.cleared_ts_ms, alarm.clear_value) == (T0 + 9000, 74.5)
    # other joints match the same rule, each with its own state
    runs_service.evaluate_alarms(session, robot.id, series("j1_temp_c", [90, 91], start_ms=T0 + 10_000)
                                 + series("j2_temp_c", [90, 91, 92], start_ms=T0 + 10_000))
    session.commit()
    active, count = runs_service.list_alarms(session, viewer=None, robot_id=robot.id, active=True)
    assert count == 1
    assert active[0].key == "j2_temp_c"
    cleared, _ = runs_service.list_alarms(session, viewer=None, robot_id=robot.id, active=False)
    assert [a.id for a in cleared] == [alarm.id]


def test_state_survives_batches_and_old_samples_are_ignored(session: Session) -> None:
    robot = make_robot(session)
    rule(session, key="j2_temp_c")
    for i, value in enumerate([81.0, 82.0]):  # one sample per ingest batch
        runs_service.evaluate_alarms(session, robot.id, [ScalarSample("R", "j2_temp_c", T0 + i * 1000, value, None,
                                                                      None)])
        session.commit()
    # a redelivered (older) sample changes nothing; the next new breach completes the three
    assert not runs_service.evaluate_alarms(session, robot.id, series("j2_temp_c", [95.0])).raised
    changes = runs_service.evaluate_alarms(session, robot.id, series("j2_temp_c", [83.0], start_ms=T0 + 2000))
    session.commit()
    assert len(changes.raised) == 1
    # text samples and keys no rule names are ignored cheaply
    assert not runs_service.evaluate_alarms(session, robot.id, [("state", T0 + 3000, None),
                                                                ("j2_current_a", T0 + 3000, 99.0)]).raised


def test_duration_rule(session: Session) -> None:
    robot = make_robot(session)
    rule(session, name="overcurrent", key="j4_current_a", threshold=7.0, n_consecutive=1, for_duration_s=10,
         clear_threshold=None, severity="warning")
    values = [7.5] * 6 + [6.0]  # every 2 s: 0, 2, ..., 10 s breaching, then back under
    changes = runs_service.evaluate_alarms(session, robot.id, series("j4_current_a", values, step_ms=2000))
    session.commit()
    assert [a.raised_ts_ms for a in changes.raised] == [T0 + 10_000]  # breaching for 10 s
    assert [a.cleared_ts_ms for a in changes.cleared] == [T0 + 12_000]  # no hysteresis: clears under the threshold


def test_lower_bound_rule_and_model_scope(session: Session) -> None:
    robot = make_robot(session, model="KR-16")
    other = make_robot(session, model="IRB-6700")
    rule(session, name="speed lost", key="j1_speed_hz", comparison="<", threshold=1.0, n_consecutive=2,
         clear_threshold=2.0, robot_model="KR-16")
    samples = series("j1_speed_hz", [0.5, 0.4, 1.5, 2.5])
    assert not runs_service.evaluate_alarms(session, other.id, samples).raised
    changes = runs_service.evaluate_alarms(session, robot.id, samples)
    assert [a.value for a in changes.raised] == [0.4]
    assert changes.raised[0].peak_value == 0.4
    assert [a.clear_value for a in changes.cleared] == [2.5]  # 1.5 is inside the hysteresis band


def test_rule_validation() -> None:
    with pytest.raises(PydanticValidationError, match="clear_threshold must be <= threshold"):
        AlarmRuleCreate(name="x", key="k", comparison=">", threshold=80, clear_threshold=85)
    with pytest.raises(PydanticValidationError, match="clear_threshold must be >= threshold"):
        AlarmRuleCreate(name="x", key="k", comparison="<", threshold=1, clear_threshold=0.5)
    with pytest.raises(PydanticValidationError):
        AlarmRuleCreate(name="x", key="k/bad", comparison=">", threshold=1)


def test_critical_alarm_opens_a_ticket_with_the_joint_parts(session: Session, settings: Settings) -> None:
    from refurb.consulting import service as consulting_service
    from refurb.consulting.models import LinkKind
    from tests.factories import make_part
    from tests.telemetry.test_runs_support import install

    tech = make_user(session, "technician")[0]
    robot = make_robot(session)
    motor = make_part(session)
    install(session, motor, robot, tech, "J3")
    session.commit()
    rule(session, key="j3_temp_c", threshold=100.0, clear_threshold=None, n_consecutive=1, severity="critical")
    changes = runs_service.evaluate_alarms(session, robot.id, series("j3_temp_c", [101.0]), settings=settings)
    session.commit()
    alarm = changes.raised[0]
    assert alarm.ticket_id is not None
    tickets = consulting_service.tickets_linked_to(session, kind=LinkKind.ALARM, target_id=alarm.id)
    assert [t.id for t in tickets] == [alarm.ticket_id]
    links = {(link.kind, link.target_id) for link in consulting_service.ticket_links(session, tickets[0])}
    assert ("part", motor.id) in links
    assert parts_service.get_robot(session, robot.id).id == robot.id
