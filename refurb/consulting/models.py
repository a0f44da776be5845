"""Tables and API shapes of the consulting domain: tickets, their links, comments, attachments, time, events,
verdicts and SLA policies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import model_validator
from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from refurb.consulting.sla import SlaLevel
from refurb.db import EnumText, UTCDateTime, utcnow


class TicketCategory(StrEnum):
    DESIGN = "design"
    PROCESS = "process"
    TESTING = "testing"
    REMANUFACTURING = "remanufacturing"
    DATA_AI = "data_ai"
    OTHER = "other"


class TicketPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketState(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_CUSTOMER = "waiting_customer"
    WAITING_PARTS = "waiting_parts"
    WAITING_VENDOR = "waiting_vendor"
    RESOLVED = "resolved"
    CLOSED = "closed"


class LinkKind(StrEnum):
    PART = "part"
    PART_TYPE = "part_type"
    ROBOT = "robot"
    TEST_RUN = "test_run"
    ALARM = "alarm"


class TicketEventKind(StrEnum):
    CREATED = "created"
    TRANSITION = "transition"
    REOPENED = "reopened"
    CLOSED = "closed"
    SLA_WARNING = "sla_warning"
    SLA_ESCALATION = "sla_escalation"
    PROCESS_CHANGE = "process_change"
    LINKED = "linked"
    WATCHER_ADDED = "watcher_added"


class VerdictKind(StrEnum):
    APPROVE_REUSE = "approve_reuse"
    REQUIRE_REMANUFACTURE = "require_remanufacture"
    REQUIRE_REPLACEMENT = "require_replacement"
    RECYCLE = "recycle"
    SCRAP = "scrap"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    PROCESS_CHANGE = "process_change"


class VerdictTarget(StrEnum):
    PART = "part"
    PART_TYPE = "part_type"
    ROBOT = "robot"


ID_LIST_MAX = 100


# --- tickets ---------------------------------------------------------------------------------------------------


class TicketBase(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    category: TicketCategory = Field(default=TicketCategory.OTHER, sa_type=EnumText(TicketCategory), index=True)
    priority: TicketPriority = Field(default=TicketPriority.NORMAL, sa_type=EnumText(TicketPriority))


class Ticket(TicketBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    state: TicketState = Field(default=TicketState.NEW, sa_type=EnumText(TicketState), index=True)
    requester_org_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    requester_id: int | None = Field(default=None, foreign_key="user.id")
    assignee_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution_summary: str | None = Field(default=None, max_length=4000)
    source: str = Field(default="api", max_length=40)
    suggested_category: TicketCategory | None = Field(default=None, sa_type=EnumText(TicketCategory))
    # SLA: targets are copied from the policy when the ticket opens; due times, breach flags and level are refreshed
    # on every change and by the periodic check, and only written when they change (GET /tickets/{id}/sla is live).
    sla_policy_id: int | None = Field(default=None, foreign_key="sla_policy.id")
    response_target_h: float
    resolution_target_h: float
    response_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolution_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sla_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    response_breached: bool = False
    resolution_breached: bool = False
    sla_level: SlaLevel = Field(default=SlaLevel.OK, sa_type=EnumText(SlaLevel))
    sla_paused: bool = False
    escalation_level: int = 0
    event_count: int = 0
    chain_head: str | None = Field(default=None, max_length=64)


class LinkIds(SQLModel):
    """Items a ticket is about; parts, part types and robots must exist (and be the customer's own)."""

    part_ids: list[int] = Field(default_factory=list, max_length=ID_LIST_MAX)
    part_type_ids: list[int] = Field(default_factory=list, max_length=ID_LIST_MAX)
    robot_ids: list[int] = Field(default_factory=list, max_length=ID_LIST_MAX)
    test_run_ids: list[int] = Field(default_factory=list, max_length=ID_LIST_MAX)
    alarm_ids: list[int] = Field(default_factory=list, max_length=ID_LIST_MAX)

    def by_kind(self) -> dict[LinkKind, list[int]]:
        return {LinkKind.PART: self.part_ids, LinkKind.PART_TYPE: self.part_type_ids,
                LinkKind.ROBOT: self.robot_ids, LinkKind.TEST_RUN: self.test_run_ids,
                LinkKind.ALARM: self.alarm_ids}


class TicketCreate(TicketBase, LinkIds):
    """What a requester sends: no ids of its own, no owner, no state (the organisation is the caller's)."""


class TicketLinkPublic(SQLModel):
    kind: LinkKind
    target_id: int


class TicketPublic(TicketBase):
    id: int
    state: TicketState
    requester_org_id: int | None
    requester_id: int | None
    assignee_id: int | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    resolution_summary: str | None
    source: str
    suggested_category: TicketCategory | None
    response_target_h: float
    resolution_target_h: float
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    due_at: datetime | None
    sla_level: SlaLevel
    sla_paused: bool
    breached: bool
    escalation_level: int
    links: list[TicketLinkPublic] = Field(default_factory=list)
    watcher_ids: list[int] = Field(default_factory=list)


class TicketsPublic(SQLModel):
    data: list[TicketPublic]
    count: int


class TransitionRequest(SQLModel):
    to: TicketState
    assignee_id: int | None = None
    note: str | None = Field(default=None, max_length=4000)


# --- links, watchers -------------------------------------------------------------------------------------------


class TicketLink(SQLModel, table=True):
    """One item a ticket is about; test runs and alarms are stored by id (their tables belong to telemetry)."""

    __tablename__ = "ticket_link"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", "target_id", name="uq_ticket_link"),
                      Index("ix_ticket_link_target", "kind", "target_id"))
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    kind: LinkKind = Field(sa_type=EnumText(LinkKind))
    target_id: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TicketWatcher(SQLModel, table=True):
    __tablename__ = "ticket_watcher"
    __table_args__ = (UniqueConstraint("ticket_id", "user_id", name="uq_ticket_watcher"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WatcherAdd(SQLModel):
    user_id: int


# --- comments, time, attachments -------------------------------------------------------------------------------


class TicketComment(SQLModel, table=True):
    __tablename__ = "ticket_comment"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    author_id: int | None = Field(default=None, foreign_key="user.id")
    author: str = Field(max_length=100)
    internal: bool = False
    body: str = Field(max_length=10_000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class CommentCreate(SQLModel):
    body: str = Field(min_length=1, max_length=10_000)
    internal: bool = False


class CommentPublic(SQLModel):
    id: int
    ticket_id: int
    author_id: int | None
    author: str
    internal: bool
    body: str
    created_at: datetime


class TimeEntry(SQLModel, table=True):
    __tablename__ = "ticket_time_entry"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    user: str = Field(max_length=100)
    minutes: int
    note: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TimeEntryCreate(SQLModel):
    minutes: int = Field(gt=0, le=24 * 60)
    note: str = Field(default="", max_length=1000)


class TimeEntryPublic(SQLModel):
    id: int
    ticket_id: int
    user_id: int
    user: str
    minutes: int
    note: str
    created_at: datetime


class TimeEntriesPublic(SQLModel):
    data: list[TimeEntryPublic]
    count: int
    total_minutes: int


class TicketAttachment(SQLModel, table=True):
    """Metadata of a file stored under Settings.attachments_dir/<ticket id>/<storage_key>."""

    __tablename__ = "ticket_attachment"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    uploaded_by_id: int | None = Field(default=None, foreign_key="user.id")
    uploaded_by: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=100)
    size_bytes: int
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=64, unique=True)
    internal: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AttachmentPublic(SQLModel):
    id: int
    ticket_id: int
    uploaded_by: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    internal: bool
    created_at: datetime


# --- the event log ---------------------------------------------------------------------------------------------


class TicketEvent(SQLModel, table=True):
    """Append-only log of a ticket, hash-chained like part events (see refurb/parts/chain.py).

    ``level`` is set only on SLA warnings and escalations: the unique key (ticket_id, kind, level) makes each of
    them happen exactly once, even when two checkers run at the same time (NULL levels never collide).
    """

    __tablename__ = "ticket_event"
    __table_args__ = (UniqueConstraint("ticket_id", "seq", name="uq_ticket_event_seq"),
                      UniqueConstraint("ticket_id", "kind", "level", name="uq_ticket_event_level"))
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    seq: int
    kind: TicketEventKind = Field(sa_type=EnumText(TicketEventKind))
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    actor: str = Field(max_length=100)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    from_state: TicketState | None = Field(default=None, sa_type=EnumText(TicketState))
    to_state: TicketState | None = Field(default=None, sa_type=EnumText(TicketState))
    level: int | None = None
    internal: bool = False
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class TicketEventPublic(SQLModel):
    id: int
    ticket_id: int
    seq: int
    kind: TicketEventKind
    actor: str
    at: datetime
    from_state: TicketState | None
    to_state: TicketState | None
    level: int | None
    internal: bool
    details: dict[str, Any]
    hash: str


# --- verdicts --------------------------------------------------------------------------------------------------


class TicketVerdict(SQLModel, table=True):
    """An expert's closing verdict on a linked item, and the part events it produced."""

    __tablename__ = "ticket_verdict"
    __table_args__ = (Index("ix_ticket_verdict_target", "target_kind", "target_id"),)
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    target_kind: VerdictTarget = Field(sa_type=EnumText(VerdictTarget))
    target_id: int
    verdict: VerdictKind = Field(sa_type=EnumText(VerdictKind))
    note: str = Field(default="", max_length=2000)
    sub_part_id: int | None = Field(default=None, foreign_key="part.id", index=True)
    decided_by_id: int | None = Field(default=None, foreign_key="user.id")
    decided_by: str = Field(max_length=100)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    applied_part_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    part_event_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class VerdictCreate(SQLModel):
    """One verdict in a close request: exactly one of part_id, part_type_id, robot_id."""

    part_id: int | None = None
    part_type_id: int | None = None
    robot_id: int | None = None
    verdict: VerdictKind
    note: str = Field(default="", max_length=2000)
    sub_part_id: int | None = None

    @model_validator(mode="after")
    def _one_target(self) -> VerdictCreate:
        given = [n for n in ("part_id", "part_type_id", "robot_id") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("a verdict names exactly one of part_id, part_type_id or robot_id")
        if self.verdict == VerdictKind.REQUIRE_REPLACEMENT and (self.part_id is None or self.sub_part_id is None):
            raise ValueError("require_replacement needs part_id and the sub_part_id to replace")
        if self.verdict != VerdictKind.REQUIRE_REPLACEMENT and self.sub_part_id is not None:
            raise ValueError("sub_part_id only goes with require_replacement")
        return self

    @property
    def target(self) -> tuple[VerdictTarget, int]:
        if self.part_id is not None:
            return VerdictTarget.PART, self.part_id
        if self.part_type_id is not None:
            return VerdictTarget.PART_TYPE, self.part_type_id
        assert self.robot_id is not None
        return VerdictTarget.ROBOT, self.robot_id


class CloseRequest(SQLModel):
    resolution: str = Field(min_length=1, max_length=4000)
    verdicts: list[VerdictCreate] = Field(default_factory=list, max_length=ID_LIST_MAX)


class VerdictPublic(SQLModel):
    id: int
    ticket_id: int
    target_kind: VerdictTarget
    target_id: int
    verdict: VerdictKind
    note: str
    sub_part_id: int | None
    decided_by: str
    decided_at: datetime
    applied_part_ids: list[int]
    part_event_ids: list[int]


class ClosePublic(SQLModel):
    ticket: TicketPublic
    verdicts: list[VerdictPublic]


# --- SLA policies ----------------------------------------------------------------------------------------------


class SlaPolicyBase(SQLModel):
    priority: TicketPriority = Field(sa_type=EnumText(TicketPriority))
    category: TicketCategory | None = Field(default=None, sa_type=EnumText(TicketCategory),
                                            description="null: every category without a policy of its own")
    response_target_h: float = Field(gt=0, le=10_000, description="first response, in business hours")
    resolution_target_h: float = Field(gt=0, le=100_000, description="resolution, in business hours")


class SlaPolicy(SlaPolicyBase, table=True):
    __tablename__ = "sla_policy"
    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SlaPolicySet(SlaPolicyBase):
    """Create or replace the policy of one (priority, category)."""


class SlaPolicyPublic(SlaPolicyBase):
    id: int | None
    source: str


class TicketSlaPublic(SQLModel):
    ticket_id: int
    state: TicketState
    policy: SlaPolicyPublic
    calendar: dict[str, Any]
    opened_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    response_due_at: datetime
    resolution_due_at: datetime
    response_used_h: float
    resolution_used_h: float
    response_remaining_h: float
    resolution_remaining_h: float
    response_breached: bool
    resolution_breached: bool
    fraction_used: float
    level: SlaLevel
    paused: bool
    escalation_level: int
    pauses: list[dict[str, datetime | None]]
