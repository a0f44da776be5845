"""KPIs over returned cores: a core's second visit counts on its own, with the new part fitted during that visit."""

from __future__ import annotations

from sqlmodel import Session

from refurb.metrics import service as metrics_service
from tests.factories import make_part, make_part_type, make_user
from tests.metrics.helpers import record


def test_a_returned_core_with_a_new_part_fitted(session: Session) -> None:
    tech, _ = make_user(session, "technician")
    manager, _ = make_user(session, "manager")
    motor_type = make_part_type(session, part_number="MOTOR", new_price=1000.0,
                                materials=[{"material": "steel", "mass_kg": 10.0, "recycled_fraction": 0.0}])
    brake_type = make_part_type(session, part_number="BRAKE", new_price=100.0,
                                materials=[{"material": "steel", "mass_kg": 1.0, "recycled_fraction": 0.0}])
    motor = make_part(session, part_type_id=motor_type.id)
    brake = make_part(session, part_type_id=brake_type.id)
    # first visit: received, reused, certified, shipped
    for step, fields in (("received", {}), ("inspected", {"grade": "A"}), ("tested", {"passed": True}),
                         ("certified", {}), ("dispositioned", {"disposition": "reuse"}), ("shipped", {})):
        record(session, motor, tech, step, **fields)
    # second visit: the core comes back, gets a new brake and is reused again
    record(session, motor, tech, "received")
    record(session, motor, tech, "inspected", grade="B")
    record(session, brake, tech, "installed", parent_part_id=motor.id)
    record(session, motor, tech, "dispositioned", disposition="reuse")
    session.commit()
    k = metrics_service.kpis(session, viewer=manager)
    assert k["cores_received"]["count"] == 2  # two visits of one core
    assert k["disposition_mix"]["reuse"]["count"] == 2
    assert k["co2e_avoided_kg"]["new_parts_fitted_kg"] > 0  # the brake fitted during the second visit
    assert k["value_retained"]["new_value"] == 2000.0
