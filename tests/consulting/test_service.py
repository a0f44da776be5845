"""Consulting service: state machine, SLA through the service on a fixed clock, verdicts, automation.

Times are Asia/Seoul (KST, UTC+9) in the plain business week Mon 2026-06-08 ... Fri 2026-06-12. Default SLA targets
(business hours): urgent 1 / 9, high 4 / 18, normal 9 / 45, low 18 / 90.
"""

from __future__ import annotations

import itertools

import pytest
from sqlmodel import Session, select

from refurb.config import Settings
from refurb.consulting import service
from refurb.consulting.models import (
    CloseRequest,
    CommentCreate,
    SlaPolicySet,
    TicketCategory,
    TicketEvent,
    TicketPriority,
    TicketState,
    TicketVerdict,
    TransitionRequest,
    VerdictCreate,
)
from refurb.errors import ConflictError, ForbiddenError, IllegalTransitionError, NotFoundError, ValidationError
from refurb.parts import service as parts_service
from refurb.parts.models import EventCreate, EventType
from tests.consulting.helpers import MONDAY_10, event_types, kst, move, open_ticket, part_in_process
from tests.factories import make_part, make_part_type, make_robot, make_user

S = TicketState


@pytest.fixture
def people(session: Session) -> dict:  # type: ignore[type-arg]
    return {
        "customer": make_user(session, "customer", org="Acme Robotics")[0],
        "other_customer": make_user(session, "customer", org="Busan Metal")[0],
        "kim": make_user(session, "consultant", specialties=["testing/certification"])[0],
        "lee": make_user(session, "consultant", specialties=["design"])[0],
        "park": make_user(session, "consultant", specialties=["testing"])[0],
        "manager": make_user(session, "manager")[0],
        "tech": make_user(session, "technician")[0],
    }


# --- the state machine -----------------------------------------------------------------------------------------


def test_happy_path_through_every_working_state(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    assert t.state == S.NEW
    m, kim = people["manager"], people["kim"]
    steps = [("triaged", m, {}), ("assigned", m, {"assignee_id": kim.id}), ("in_progress", kim, {}),
             ("waiting_customer", kim, {}), ("in_progress", kim, {}), ("waiting_parts", kim, {}),
             ("waiting_vendor", kim, {}), ("in_progress", kim, {}), ("resolved", kim, {"note": "replace bearing"})]
    for minute, (to, actor, extra) in enumerate(steps):
        move(session, t, to, actor, settings, kst(2026, 6, 8, 11, minute), **extra)
        assert t.state == to
    assert t.assignee_id == kim.id
    assert t.resolution_summary == "replace bearing"
    assert t.resolved_at == kst(2026, 6, 8, 11, 8)
    service.close_ticket(session, t, CloseRequest(resolution="bearing replaced"), actor=kim, settings=settings,
                         now=kst(2026, 6, 8, 12))
    assert t.state == S.CLOSED
    kinds = [e.kind for e in service.list_events(session, t)]
    assert kinds[0] == "created"
    assert kinds[-1] == "closed"
    assert service.verify_chain(session, t).valid


ILLEGAL = [(a, b) for a, b in itertools.product(TicketState, TicketState) if b not in service.TRANSITIONS[a]]


@pytest.mark.parametrize(("current", "to"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_illegal_transition_is_409_naming_the_allowed_ones(session: Session, settings: Settings,
                                                                 people: dict, current: S, to: S) -> None:
    t = open_ticket(session, people["customer"], settings)
    t.state = current
    with pytest.raises(IllegalTransitionError) as err:
        service.transition(session, t, TransitionRequest(to=to), actor=people["manager"], settings=settings,
                           now=kst(2026, 6, 8, 11))
    assert err.value.status_code == 409
    assert f"in state '{current}'" in err.value.message
    assert err.value.extra["allowed"] == service.allowed_next(t)
    assert err.value.extra["attempted"] == to.value
    for name in err.value.extra["allowed"]:
        assert name in err.value.message


def test_illegal_message_example(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    with pytest.raises(IllegalTransitionError, match=r"cannot move ticket \d+ to 'resolved' in state 'new'; "
                                                     r"allowed next: triaged, assigned, waiting_customer, closed"):
        service.transition(session, t, TransitionRequest(to=S.RESOLVED), actor=people["manager"],
                           settings=settings, now=kst(2026, 6, 8, 11))


def test_closing_goes_through_close_with_a_resolution(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    with pytest.raises(ValidationError, match="closing needs a resolution"):
        service.transition(session, t, TransitionRequest(to=S.CLOSED), actor=people["manager"], settings=settings)


def test_reopen_within_the_period_and_refused_after(session: Session, settings: Settings, people: dict) -> None:
    kim, customer = people["kim"], people["customer"]
    t = open_ticket(session, customer, settings)
    move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 11), assignee_id=kim.id)
    service.close_ticket(session, t, CloseRequest(resolution="done"), actor=kim, settings=settings,
                         now=kst(2026, 6, 8, 12))
    # the customer reopens 13 days later: allowed (14 days by default); the resolution is cleared
    move(session, t, "in_progress", customer, settings, kst(2026, 6, 21, 12))
    assert t.state == S.IN_PROGRESS
    assert (t.closed_at, t.resolved_at, t.resolution_summary) == (None, None, None)
    assert service.list_events(session, t)[-1].kind == "reopened"
    service.close_ticket(session, t, CloseRequest(resolution="done again"), actor=kim, settings=settings,
                         now=kst(2026, 6, 22, 12))
    with pytest.raises(IllegalTransitionError, match="reopen period of 14 days ended") as err:
        service.transition(session, t, TransitionRequest(to=S.IN_PROGRESS), actor=customer, settings=settings,
                           now=kst(2026, 7, 7, 12))
    assert err.value.extra["allowed"] == []


def test_reopen_period_is_a_setting(session: Session, settings: Settings, people: dict) -> None:
    short = settings.model_copy(update={"ticket_reopen_days": 1})
    t = open_ticket(session, people["customer"], short)
    move(session, t, "assigned", people["manager"], short, kst(2026, 6, 8, 11), assignee_id=people["kim"].id)
    move(session, t, "resolved", people["kim"], short, kst(2026, 6, 8, 12))
    with pytest.raises(IllegalTransitionError) as err:
        move(session, t, "in_progress", people["customer"], short, kst(2026, 6, 10, 12))
    assert err.value.extra["allowed"] == ["closed"]


def test_who_may_move_a_ticket(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    at = kst(2026, 6, 8, 11)
    with pytest.raises(ForbiddenError, match="customers may only reopen"):
        move(session, t, "triaged", people["customer"], settings, at)
    with pytest.raises(ForbiddenError, match="technicians"):
        move(session, t, "triaged", people["tech"], settings, at)
    # a consultant takes a ticket from their queue, but may not hand it to somebody else
    with pytest.raises(ForbiddenError, match="only a manager"):
        move(session, t, "assigned", people["kim"], settings, at, assignee_id=people["park"].id)
    move(session, t, "assigned", people["kim"], settings, at)
    assert t.assignee_id == people["kim"].id
    with pytest.raises(ForbiddenError, match="only the assignee or a manager"):
        move(session, t, "in_progress", people["park"], settings, at)
    # the assignee hands over
    move(session, t, "assigned", people["kim"], settings, at, assignee_id=people["park"].id)
    assert t.assignee_id == people["park"].id
    with pytest.raises(ValidationError, match="cannot be assigned"):
        move(session, t, "assigned", people["manager"], settings, at, assignee_id=people["tech"].id)
    with pytest.raises(ValidationError, match="assignee_id goes only"):
        move(session, t, "in_progress", people["park"], settings, at, assignee_id=people["kim"].id)


def test_in_progress_needs_an_assignee(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    move(session, t, "waiting_customer", people["manager"], settings, kst(2026, 6, 8, 11))
    with pytest.raises(ValidationError, match="has no assignee"):
        move(session, t, "in_progress", people["manager"], settings, kst(2026, 6, 8, 12))


# --- visibility in the service ---------------------------------------------------------------------------------


def test_get_ticket_404_for_other_orgs_and_403_for_staff_outside_the_queue(session: Session, settings: Settings,
                                                                           people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    assert t.requester_org_id == people["customer"].organisation_id
    with pytest.raises(NotFoundError):
        service.get_ticket(session, t.id, viewer=people["other_customer"])
    with pytest.raises(ForbiddenError):
        service.get_ticket(session, t.id, viewer=people["lee"])  # design specialist, testing ticket
    with pytest.raises(ForbiddenError):
        service.get_ticket(session, t.id, viewer=people["tech"])
    for who in ("customer", "kim", "park", "manager"):
        assert service.get_ticket(session, t.id, viewer=people[who]).id == t.id
    with pytest.raises(NotFoundError):
        service.get_ticket(session, 999_999, viewer=people["lee"])
    # a watcher may read it
    service.add_watcher(session, t, user_id=people["lee"].id, actor=people["manager"], now=kst(2026, 6, 8, 11))
    assert service.get_ticket(session, t.id, viewer=people["lee"]).id == t.id


def test_lists_and_queue_respect_visibility(session: Session, settings: Settings, people: dict) -> None:
    mine = open_ticket(session, people["customer"], settings, title="mine")
    theirs = open_ticket(session, people["other_customer"], settings, title="theirs", category="design")
    rows, count = service.list_tickets(session, viewer=people["customer"])
    assert [r.id for r in rows] == [mine.id]
    assert count == 1
    assert [r.id for r in service.list_tickets(session, viewer=people["lee"])[0]] == [theirs.id]
    assert len(service.list_tickets(session, viewer=people["manager"])[0]) == 2
    assert [r.id for r in service.queue(session, viewer=people["kim"])[0]] == [mine.id]
    move(session, mine, "assigned", people["manager"], settings, kst(2026, 6, 8, 11), assignee_id=people["park"].id)
    assert service.queue(session, viewer=people["kim"])[1] == 0  # taken by park now
    assert [r.id for r in service.queue(session, viewer=people["park"])[0]] == [mine.id]
    assert [r.id for r in service.queue(session, viewer=people["manager"])[0]] == [theirs.id]
    with pytest.raises(ForbiddenError):
        service.queue(session, viewer=people["tech"])


def test_internal_comments_and_notes_hidden_from_customers(session: Session, settings: Settings,
                                                           people: dict) -> None:
    t = open_ticket(session, people["customer"], settings)
    move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 11), assignee_id=people["kim"].id,
         note="kim knows this supplier")
    service.add_comment(session, t, CommentCreate(body="supplier batch suspect", internal=True),
                        author=people["kim"], settings=settings, now=kst(2026, 6, 8, 11, 30))
    service.add_comment(session, t, CommentCreate(body="we are looking at it"), author=people["kim"],
                        settings=settings, now=kst(2026, 6, 8, 12))
    seen = [c.body for c in service.list_comments(session, t, viewer=people["customer"])]
    assert seen == ["we are looking at it"]
    assert len(service.list_comments(session, t, viewer=people["park"])) == 2
    customer_events = service.list_events(session, t, viewer=people["customer"])
    assert all("note" not in e.details for e in customer_events)
    staff_events = service.list_events(session, t, viewer=people["kim"])
    assert any(e.details.get("note") == "kim knows this supplier" for e in staff_events)
    with pytest.raises(ForbiddenError):
        service.add_comment(session, t, CommentCreate(body="x", internal=True), author=people["customer"],
                            settings=settings)


def test_customers_link_only_their_own_or_unowned_items(session: Session, settings: Settings, people: dict) -> None:
    acme, busan = people["customer"], people["other_customer"]
    own_robot = make_robot(session, owner_org_id=acme.organisation_id)
    other_robot = make_robot(session, owner_org_id=busan.organisation_id)
    own_part = make_part(session, owner_org_id=acme.organisation_id)
    other_part = make_part(session, owner_org_id=busan.organisation_id)
    unowned = make_part(session)
    t = open_ticket(session, acme, settings, robot_ids=[own_robot.id], part_ids=[own_part.id, unowned.id])
    links = {(link.kind, link.target_id) for link in service.ticket_links(session, t)}
    assert links == {("robot", own_robot.id), ("part", own_part.id), ("part", unowned.id)}
    for field, value in (("robot_ids", other_robot.id), ("part_ids", other_part.id), ("part_ids", 987_654)):
        with pytest.raises(ValidationError, match=f"{field}: .* not found"):
            open_ticket(session, acme, settings, **{field: [value]})
    # staff link anything; the ticket then belongs to the items' one owner
    staff_ticket = open_ticket(session, people["manager"], settings, robot_ids=[other_robot.id])
    assert staff_ticket.requester_org_id == busan.organisation_id
    shown = service.to_public(session, [t], viewer=acme)[0]
    assert len(shown.links) == 3


# --- SLA through the service -----------------------------------------------------------------------------------


def test_policy_defaults_and_configured_policies(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings, priority="urgent")
    assert (t.response_target_h, t.resolution_target_h) == (1.0, 9.0)
    service.set_policy(session, SlaPolicySet(priority=TicketPriority.URGENT, response_target_h=2,
                                             resolution_target_h=16))
    service.set_policy(session, SlaPolicySet(priority=TicketPriority.URGENT, category=TicketCategory.DESIGN,
                                             response_target_h=3, resolution_target_h=30))
    service.set_policy(session, SlaPolicySet(priority=TicketPriority.URGENT, category=TicketCategory.DESIGN,
                                             response_target_h=4, resolution_target_h=32))
    session.commit()
    testing = open_ticket(session, people["customer"], settings, priority="urgent")
    design = open_ticket(session, people["customer"], settings, priority="urgent", category="design")
    assert (testing.response_target_h, testing.resolution_target_h) == (2, 16)
    assert (design.response_target_h, design.resolution_target_h) == (4, 32)
    sources = {(p.priority, p.category): p.source for p in service.list_policies(session)}
    assert sources[("urgent", None)] == "policy"
    assert sources[("low", None)] == "default"
    assert len(service.list_policies(session)) == 5


def test_due_times_in_business_hours(session: Session, settings: Settings, people: dict) -> None:
    t = open_ticket(session, people["customer"], settings, priority="urgent")  # Mon 10:00, 1 h / 9 h
    status = service.sla_view(session, t, settings=settings, now=kst(2026, 6, 8, 10, 30))
    assert status.response_due_at == kst(2026, 6, 8, 11)
    assert status.resolution_due_at == kst(2026, 6, 9, 10)  # Mon 10-18 is 8 h, one more on Tuesday
    assert status.level == "ok"
    assert status.response_used_h == pytest.approx(0.5)
    # the first public comment by staff is the first response; internal ones are not
    service.add_comment(session, t, CommentCreate(body="looking", internal=True), author=people["kim"],
                        settings=settings, now=kst(2026, 6, 8, 10, 40))
    assert t.first_response_at is None
    service.add_comment(session, t, CommentCreate(body="on it"), author=people["kim"], settings=settings,
                        now=kst(2026, 6, 8, 10, 45))
    assert t.first_response_at == kst(2026, 6, 8, 10, 45)
    status = service.sla_view(session, t, settings=settings, now=kst(2026, 6, 9, 12))
    assert status.response_used_h == pytest.approx(0.75)
    assert not status.response_breached
    assert status.resolution_breached
    assert status.resolution_remaining_h == pytest.approx(-2.0)  # Mon 10-18 and Tue 9-12: 11 of 9 h
    assert status.escalation_level == 2  # more than 100 %, less than 150 %


def test_ticket_opened_outside_hours_and_over_a_holiday(session: Session, settings: Settings, people: dict) -> None:
    saturday = open_ticket(session, people["customer"], settings, priority="urgent", now=kst(2026, 6, 13, 22))
    assert saturday.response_due_at == kst(2026, 6, 15, 10)  # the clock starts Monday 09:00
    # Chuseok 2026: Thu 24 - Sat 26 September; opened Wednesday 17:00 with 9 h: 1 h Wed, 8 h Mon 28th
    chuseok = open_ticket(session, people["customer"], settings, priority="urgent", now=kst(2026, 9, 23, 17))
    assert chuseok.resolution_due_at == kst(2026, 9, 28, 17)
    # a configured calendar: Saturdays open 09-13, no public holidays
    custom = settings.model_copy(update={"sla_workdays": [0, 1, 2, 3, 4, 5], "sla_holiday_country": None})
    t = open_ticket(session, people["customer"], custom, priority="urgent", now=kst(2026, 6, 13, 10))
    assert t.response_due_at == kst(2026, 6, 13, 11)


def test_pause_in_waiting_states_spanning_a_night(session: Session, settings: Settings, people: dict) -> None:
    kim = people["kim"]
    t = open_ticket(session, people["customer"], settings, priority="high")  # Mon 10:00, 4 h / 18 h
    move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 10, 30), assignee_id=kim.id)
    service.add_comment(session, t, CommentCreate(body="which firmware?"), author=kim, settings=settings,
                        now=kst(2026, 6, 8, 11))
    move(session, t, "waiting_customer", kim, settings, kst(2026, 6, 8, 16))
    paused = service.sla_view(session, t, settings=settings, now=kst(2026, 6, 9, 10))
    assert paused.paused
    assert t.sla_paused
    assert paused.resolution_used_h == pytest.approx(6.0)  # Mon 10-16
    # the customer's reply resumes the clock (back to in_progress)
    service.add_comment(session, t, CommentCreate(body="v2.3"), author=people["customer"], settings=settings,
                        now=kst(2026, 6, 9, 11))
    assert t.state == S.IN_PROGRESS
    status = service.sla_view(session, t, settings=settings, now=kst(2026, 6, 9, 15))
    assert not status.paused
    assert status.resolution_used_h == pytest.approx(10.0)  # 14 h open minus 4 h paused (Mon 16-18, Tue 9-11)
    assert status.resolution_due_at == kst(2026, 6, 10, 14)  # 8 h left: Tue 15-18, Wed 9-14
    assert status.pauses == [{"start": kst(2026, 6, 8, 16), "end": kst(2026, 6, 9, 11)}]
    assert t.resolution_due_at == kst(2026, 6, 10, 14)


def test_reopened_ticket_does_not_count_the_resolved_period(session: Session, settings: Settings,
                                                            people: dict) -> None:
    kim = people["kim"]
    t = open_ticket(session, people["customer"], settings, priority="high")
    move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 10), assignee_id=kim.id)
    move(session, t, "resolved", kim, settings, kst(2026, 6, 8, 12))
    move(session, t, "in_progress", people["customer"], settings, kst(2026, 6, 9, 12))
    status = service.sla_view(session, t, settings=settings, now=kst(2026, 6, 9, 13))
    assert status.resolution_used_h == pytest.approx(3.0)  # Mon 10-12 and Tue 12-13


def test_breached_filter_and_sort_by_due(session: Session, settings: Settings, people: dict) -> None:
    c = people["customer"]
    low = open_ticket(session, c, settings, priority="low", title="low")
    urgent = open_ticket(session, c, settings, priority="urgent", title="urgent")
    high = open_ticket(session, c, settings, priority="high", title="high")
    rows, _ = service.list_tickets(session, viewer=c, sort="due", now=kst(2026, 6, 8, 10, 30))
    assert [r.title for r in rows] == ["urgent", "high", "low"]
    rows, _ = service.list_tickets(session, viewer=c, sort="created")
    assert [r.title for r in rows] == ["high", "urgent", "low"]
    # Monday 12:00: only the urgent ticket is past its 1 h response target (no check has run: it is live)
    rows, count = service.list_tickets(session, viewer=c, breached=True, now=kst(2026, 6, 8, 12))
    assert [r.id for r in rows] == [urgent.id]
    assert count == 1
    assert service.list_tickets(session, viewer=c, breached=False, now=kst(2026, 6, 8, 12))[1] == 2
    assert service.to_public(session, [urgent], viewer=c, now=kst(2026, 6, 8, 12))[0].breached
    # a paused ticket is not breached while it waits, whatever the wall clock says
    move(session, high, "waiting_customer", people["manager"], settings, kst(2026, 6, 8, 11))
    assert high.id not in [r.id for r in service.list_tickets(
        session, viewer=c, breached=True, now=kst(2026, 6, 20, 12))[0]]
    assert low.id in [r.id for r in service.list_tickets(session, viewer=c, breached=True,
                                                         now=kst(2026, 6, 20, 12))[0]]
    with pytest.raises(ValidationError, match="state"):
        service.list_tickets(session, viewer=c, state="bogus")


# --- warnings and escalations ----------------------------------------------------------------------------------


def _alerts(session: Session, ticket_id: int) -> list[tuple[str, int | None]]:
    rows = session.exec(select(TicketEvent).where(TicketEvent.ticket_id == ticket_id,
                                                  TicketEvent.level.is_not(None)).order_by(TicketEvent.seq))
    return [(str(e.kind), e.level) for e in rows]


def test_warning_and_escalations_happen_exactly_once(session: Session, settings: Settings, people: dict) -> None:
    kim = people["kim"]
    t = open_ticket(session, people["customer"], settings, priority="high")  # 4 h response target, Mon 10:00
    move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 10, 5), assignee_id=kim.id)

    def check(hour: int, minute: int = 0) -> service.SlaCheckReport:
        report = service.check_sla(session, settings=settings, now=kst(2026, 6, 8, hour, minute))
        session.commit()
        return report

    assert check(13).warnings == 0  # 3 h of 4: 75 %
    assert check(13, 30).warnings == 1  # 87.5 %
    assert check(13, 31).warnings == 0
    assert t.sla_level == "warning"
    report = check(14, 30)  # 112.5 %: breach, a second consultant
    assert (report.warnings, report.escalations) == (0, 1)
    assert check(15).escalations == 0
    report = check(17, 30)  # 187.5 %: a manager
    assert report.escalations == 1
    for minute in range(3):
        assert check(17, 40 + minute).escalations == 0
    assert _alerts(session, t.id) == [("sla_warning", 1), ("sla_escalation", 2), ("sla_escalation", 3)]
    events = {e.level: e for e in service.list_events(session, t) if e.level}
    assert events[2].details["escalated_to_id"] == people["park"].id  # same specialty, not the assignee
    assert events[3].details["escalated_to_id"] == people["manager"].id
    assert {people["park"].id, people["manager"].id} <= set(service.watcher_ids(session, t))
    assert t.escalation_level == 3
    assert all(e.internal for e in events.values())
    assert service.verify_chain(session, t).valid
    # a late first check records every level it skipped, each once
    late = open_ticket(session, people["customer"], settings, priority="high", now=kst(2026, 6, 8, 10))
    check(18)
    assert _alerts(session, late.id) == [("sla_warning", 1), ("sla_escalation", 2), ("sla_escalation", 3)]


def test_a_checker_that_read_stale_levels_cannot_record_twice(session: Session, settings: Settings, people: dict,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    t = open_ticket(session, people["customer"], settings, priority="high")
    assert service.check_sla(session, settings=settings, now=kst(2026, 6, 8, 13, 30)).warnings == 1
    session.commit()
    # a second checker that looked before the first committed: it believes nothing was recorded yet
    real_exec = session.exec

    def stale_exec(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "ticket_event.level" in str(statement) and "ticket_event.level IS NOT NULL" in str(statement):
            return iter([])
        return real_exec(statement, *args, **kwargs)

    monkeypatch.setattr(session, "exec", stale_exec)
    report = service.check_sla(session, settings=settings, now=kst(2026, 6, 8, 13, 40))
    session.commit()
    monkeypatch.undo()
    assert (report.warnings, report.already_recorded) == (0, 1)
    assert _alerts(session, t.id) == [("sla_warning", 1)]
    assert service.verify_chain(session, t).valid


def test_resolved_and_paused_tickets_do_not_escalate(session: Session, settings: Settings, people: dict) -> None:
    kim = people["kim"]
    t = open_ticket(session, people["customer"], settings, priority="high")
    move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 10), assignee_id=kim.id)
    service.add_comment(session, t, CommentCreate(body="hello"), author=kim, settings=settings,
                        now=kst(2026, 6, 8, 10, 10))
    move(session, t, "waiting_parts", kim, settings, kst(2026, 6, 8, 11))
    service.check_sla(session, settings=settings, now=kst(2026, 6, 30, 12))
    assert _alerts(session, t.id) == []
    move(session, t, "resolved", kim, settings, kst(2026, 7, 1, 12))
    service.check_sla(session, settings=settings, now=kst(2026, 7, 30, 12))
    assert _alerts(session, t.id) == []


# --- closing with verdicts -------------------------------------------------------------------------------------


@pytest.fixture
def assigned(session: Session, settings: Settings, people: dict):  # type: ignore[no-untyped-def]
    def make(**links):  # type: ignore[no-untyped-def]
        t = open_ticket(session, people["manager"], settings, **links)
        move(session, t, "assigned", people["manager"], settings, kst(2026, 6, 8, 11), assignee_id=people["kim"].id)
        return t
    return make


def _close(session: Session, t, people: dict, settings: Settings, *verdicts: dict):  # type: ignore[no-untyped-def]
    return service.close_ticket(session, t, CloseRequest(resolution="decided", verdicts=[
        VerdictCreate(**v) for v in verdicts]), actor=people["kim"], settings=settings, now=kst(2026, 6, 8, 12))


def test_verdicts_become_part_events(session: Session, settings: Settings, people: dict, assigned) -> None:  # type: ignore[no-untyped-def]
    reuse, reman, recycle, scrap, hold = (part_in_process(session) for _ in range(5))
    held = part_in_process(session)
    parts_service.record_event(session, held, EventCreate(type=EventType.QUARANTINED), actor=people["tech"])
    session.commit()
    t = assigned(part_ids=[reuse.id, reman.id, recycle.id, scrap.id, hold.id, held.id])
    _, rows = _close(session, t, people, settings,
                     {"part_id": reuse.id, "verdict": "approve_reuse", "note": "within limits"},
                     {"part_id": reman.id, "verdict": "require_remanufacture"},
                     {"part_id": recycle.id, "verdict": "recycle"},
                     {"part_id": scrap.id, "verdict": "scrap"},
                     {"part_id": hold.id, "verdict": "quarantine"},
                     {"part_id": held.id, "verdict": "approve_reuse"})
    session.commit()
    assert event_types(session, reuse)[-1] == "dispositioned"
    assert (reuse.disposition, reman.disposition) == ("reuse", "remanufacture")
    assert (recycle.status, scrap.status) == ("recycled", "scrapped")
    assert hold.quarantined
    assert event_types(session, held)[-2:] == ["released", "dispositioned"]
    assert not held.quarantined
    assert held.disposition == "reuse"
    last = parts_service.list_events(session, reuse)[-1]
    assert last.details["ticket_id"] == t.id
    assert last.details["verdict"] == "approve_reuse"
    assert last.details["note"] == "within limits"
    assert last.actor == people["kim"].username
    assert rows[5].part_event_ids == [e.id for e in parts_service.list_events(session, held)[-2:]]
    for part in (reuse, held):
        assert parts_service.verify_chain(session, part).valid
    closed = service.list_events(session, t)[-1]
    assert closed.kind == "closed"
    assert len(closed.details["verdicts"]) == 6


def test_require_replacement_removes_and_recycles_the_sub_part(session: Session, settings: Settings, people: dict,
                                                               assigned) -> None:  # type: ignore[no-untyped-def]
    motor = part_in_process(session)
    encoder = part_in_process(session)
    parts_service.record_event(session, encoder, EventCreate(type=EventType.INSTALLED, parent_part_id=motor.id),
                               actor=people["tech"])
    session.commit()
    t = assigned(part_ids=[motor.id])
    _, rows = _close(session, t, people, settings,
                     {"part_id": motor.id, "verdict": "require_replacement", "sub_part_id": encoder.id})
    session.commit()
    assert event_types(session, encoder)[-2:] == ["removed", "dispositioned"]
    assert encoder.status == "recycled"
    assert encoder.parent_part_id is None
    assert motor.disposition == "remanufacture"
    assert rows[0].applied_part_ids == sorted([motor.id, encoder.id])
    assert [v.id for v in service.verdicts_for_part(session, encoder.id)] == [rows[0].id]


def test_part_type_quarantine_and_release_reach_every_live_part(session: Session, settings: Settings, people: dict,
                                                                assigned) -> None:  # type: ignore[no-untyped-def]
    pt = make_part_type(session)
    live = [part_in_process(session, part_type_id=pt.id) for _ in range(3)]
    gone = part_in_process(session, part_type_id=pt.id)
    parts_service.record_event(session, gone, EventCreate(type=EventType.DISPOSITIONED, disposition="scrap"),
                               actor=people["tech"])
    other_type = part_in_process(session)
    session.commit()
    t = assigned(part_type_ids=[pt.id])
    _, rows = _close(session, t, people, settings, {"part_type_id": pt.id, "verdict": "quarantine"})
    session.commit()
    assert all(p.quarantined for p in live)
    assert not gone.quarantined
    assert not other_type.quarantined
    assert rows[0].applied_part_ids == sorted(p.id for p in live)
    assert [v.verdict for v in service.verdicts_for_part(session, live[0].id)] == ["quarantine"]
    assert service.verdicts_for_part(session, gone.id) == []
    t2 = assigned(part_type_ids=[pt.id])
    _close(session, t2, people, settings, {"part_type_id": pt.id, "verdict": "release"})
    session.commit()
    assert not any(p.quarantined for p in live)
    assert [v.verdict for v in service.verdicts_for_part(session, live[0].id)] == ["quarantine", "release"]


def test_process_change_is_a_ticket_event_only(session: Session, settings: Settings, people: dict,
                                               assigned) -> None:  # type: ignore[no-untyped-def]
    robot = make_robot(session)
    part = part_in_process(session)
    t = assigned(robot_ids=[robot.id], part_ids=[part.id])
    before = part.event_count
    _, rows = _close(session, t, people, settings,
                     {"robot_id": robot.id, "verdict": "process_change", "note": "torque J3 bolts to 45 Nm"},
                     {"part_id": part.id, "verdict": "process_change"})
    session.commit()
    assert part.event_count == before
    assert [r.part_event_ids for r in rows] == [[], []]
    kinds = [e.kind for e in service.list_events(session, t)]
    assert kinds.count("process_change") == 2
    assert kinds[-1] == "closed"


def test_refused_verdict_refuses_the_whole_close_and_applies_nothing(session: Session, settings: Settings,
                                                                     people: dict, assigned) -> None:  # type: ignore[no-untyped-def]
    fine = part_in_process(session)
    fresh = make_part(session)  # registered only: the state machine refuses a disposition
    t = assigned(part_ids=[fine.id, fresh.id])
    counts = (fine.event_count, fresh.event_count)
    with pytest.raises(ConflictError, match=r"close refused, nothing was applied: verdict 2 \(approve_reuse on "
                                            r"part \d+\).*cannot dispositioned part") as err:
        _close(session, t, people, settings, {"part_id": fine.id, "verdict": "quarantine"},
               {"part_id": fresh.id, "verdict": "approve_reuse"})
    assert err.value.status_code == 409
    assert err.value.extra["verdict_index"] == 1
    assert "allowed" in err.value.extra
    session.rollback()  # what the request session (or the CLI's session_scope) does with the error
    assert (fine.event_count, fresh.event_count) == counts
    assert not fine.quarantined
    assert t.state == S.ASSIGNED
    assert session.exec(select(TicketVerdict)).all() == []
    assert [e.kind for e in service.list_events(session, t)] == ["created", "transition"]


def test_verdict_validation_before_anything_is_applied(session: Session, settings: Settings, people: dict,
                                                       assigned) -> None:  # type: ignore[no-untyped-def]
    linked, unlinked, loose = part_in_process(session), part_in_process(session), part_in_process(session)
    robot = make_robot(session)
    t = assigned(part_ids=[linked.id], robot_ids=[robot.id])
    with pytest.raises(ValidationError, match=r"verdicts\[1\]: part \d+ is not linked"):
        _close(session, t, people, settings, {"part_id": linked.id, "verdict": "quarantine"},
               {"part_id": unlinked.id, "verdict": "scrap"})
    with pytest.raises(ValidationError, match="does not apply to a robot"):
        _close(session, t, people, settings, {"robot_id": robot.id, "verdict": "scrap"})
    with pytest.raises(ValidationError, match="is not installed in part"):
        _close(session, t, people, settings,
               {"part_id": linked.id, "verdict": "require_replacement", "sub_part_id": loose.id})
    with pytest.raises(ValueError, match="exactly one of"):
        VerdictCreate(part_id=1, robot_id=2, verdict="scrap")
    with pytest.raises(ValueError, match="needs part_id and the sub_part_id"):
        VerdictCreate(part_id=1, verdict="require_replacement")
    assert not linked.quarantined


def test_only_the_assignee_or_a_manager_closes(session: Session, settings: Settings, people: dict,
                                               assigned) -> None:  # type: ignore[no-untyped-def]
    t = assigned()
    for who in ("park", "customer", "tech"):
        with pytest.raises(ForbiddenError):
            service.close_ticket(session, t, CloseRequest(resolution="x"), actor=people[who], settings=settings)
    service.close_ticket(session, t, CloseRequest(resolution="x"), actor=people["manager"], settings=settings)
    with pytest.raises(IllegalTransitionError, match="in state 'closed'"):
        service.close_ticket(session, t, CloseRequest(resolution="x"), actor=people["manager"], settings=settings)


def test_ticket_event_chain_detects_tampering(session: Session, settings: Settings, people: dict,
                                              assigned) -> None:  # type: ignore[no-untyped-def]
    t = assigned()
    service.close_ticket(session, t, CloseRequest(resolution="bearing wear"), actor=people["kim"],
                         settings=settings)
    session.commit()
    assert service.verify_chain(session, t).valid
    closed = service.list_events(session, t)[-1]
    closed.details = closed.details | {"resolution": "all good"}
    session.add(closed)
    session.commit()
    report = service.verify_chain(session, t)
    assert not report.valid
    assert report.first_broken == 2


# --- automation ------------------------------------------------------------------------------------------------


def test_failed_certification_run_opens_a_pre_linked_ticket_once(session: Session, settings: Settings) -> None:
    org = make_user(session, "customer", org="Acme Robotics")[0].organisation_id
    robot = make_robot(session, owner_org_id=org)
    j3, j4 = make_part(session), make_part(session)
    checks = [{"check": "vibration_rms", "joint": "J3", "value": 7.9, "limit": 4.5, "part_id": j3.id},
              {"check": "temperature_rise", "joint": "J4", "value": 52, "limit": 45, "part_id": j4.id}]
    t = service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=41, failed_checks=checks,
                                           part_ids=[j3.id, j4.id], settings=settings, now=MONDAY_10)
    session.commit()
    assert t is not None
    assert t.source == "failed_test_run"
    assert t.category == t.suggested_category == "remanufacturing"  # vibration points at wear
    assert t.priority == "high"
    assert t.requester_org_id == org
    assert t.requester_id is None
    assert "vibration_rms" in t.description
    links = {(link.kind, link.target_id) for link in service.ticket_links(session, t)}
    assert links == {("robot", robot.id), ("test_run", 41), ("part", j3.id), ("part", j4.id)}
    assert service.list_events(session, t)[0].actor == "system"
    again = service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=41, failed_checks=checks,
                                               part_ids=[j3.id], settings=settings)
    assert again is not None
    assert again.id == t.id
    critical = service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=42, critical=True,
                                                  failed_checks=[{"check": "temperature_rise"}], part_ids=[],
                                                  settings=settings)
    assert critical is not None
    assert (critical.priority, critical.category) == ("urgent", "testing")


def test_auto_ticket_rule_is_configurable(session: Session, settings: Settings) -> None:
    robot = make_robot(session)
    off = settings.model_copy(update={"auto_ticket_on_failed_certification": False})
    assert service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=1, failed_checks=[],
                                              part_ids=[], settings=off) is None
    # ordinary (non-certification) runs are off by default, on when configured
    assert service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=2, failed_checks=[],
                                              part_ids=[], certification=False, settings=settings) is None
    on = settings.model_copy(update={"auto_ticket_on_failed_run": True})
    assert service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=3, failed_checks=[],
                                              part_ids=[], certification=False, settings=on) is not None
    with pytest.raises(ValidationError, match="part_ids: part 99999 not found"):
        service.open_ticket_for_failed_run(session, robot_id=robot.id, test_run_id=4, failed_checks=[],
                                           part_ids=[99999], settings=settings)


def test_critical_alarm_opens_an_urgent_ticket(session: Session, settings: Settings) -> None:
    robot = make_robot(session)
    assert service.open_ticket_for_alarm(session, robot_id=robot.id, alarm_id=7, key="j3.temp_c",
                                         severity="warning", settings=settings) is None
    t = service.open_ticket_for_alarm(session, robot_id=robot.id, alarm_id=7, key="j3.sensor_gap",
                                      severity="critical", settings=settings)
    assert t is not None
    assert (t.priority, t.category, t.source) == ("urgent", "data_ai", "critical_alarm")


@pytest.mark.parametrize(("checks", "category"), [
    ([{"check": "backlash_arcmin"}], "remanufacturing"),
    ([{"name": "data gap"}], "data_ai"),
    ([{"check": "repeatability_mm"}], "testing"),
    ([], "testing"),
])
def test_suggest_category(checks: list, category: str) -> None:  # type: ignore[type-arg]
    assert service.suggest_category(checks) == category


def test_specialty_names_map_to_categories() -> None:
    assert service.specialty_categories(["testing/certification", "data/AI", "remanufacturing feasibility",
                                         "Design", "process", "astrology"]) == {
        "testing", "data_ai", "remanufacturing", "design", "process"}


def test_time_entries_are_staff_only(session: Session, settings: Settings, people: dict) -> None:
    from refurb.consulting.models import TimeEntryCreate

    t = open_ticket(session, people["customer"], settings)
    service.add_time(session, t, TimeEntryCreate(minutes=30, note="reading logs"), actor=people["kim"])
    service.add_time(session, t, TimeEntryCreate(minutes=45), actor=people["park"])
    assert sum(e.minutes for e in service.list_time(session, t, viewer=people["manager"])) == 75
    with pytest.raises(ForbiddenError):
        service.add_time(session, t, TimeEntryCreate(minutes=5), actor=people["customer"])
    with pytest.raises(ForbiddenError):
        service.list_time(session, t, viewer=people["customer"])
