"""Tables of coordination: acute requests as routed, Tasks with their transition history, Encounters."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class RoutedRequest(SQLModel, table=True):
    """An acute request as routed by triage; it closes when all its Tasks are terminal."""

    __tablename__ = "routed_request"

    id: str = Field(primary_key=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    urgency: str = Field(max_length=2)
    disposition: str = Field(max_length=32)
    status: str = Field(default="open", max_length=16)  # open | closed
    due_at: datetime
    routed_at: datetime = Field(default_factory=_now)
    closed_at: datetime | None = None
    order: str = Field(sa_column=Column(Text, nullable=False))  # the triage-completed ServiceRequest


class TaskRecord(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (Index("ix_task_owner_status", "owner", "status"),
                      UniqueConstraint("acute_request_id", "source_event_id"))

    id: str = Field(primary_key=True, max_length=64)
    version: int = 1
    status: str = Field(max_length=20)
    owner: str = Field(max_length=120)
    requester: str = Field(max_length=120)
    acute_request_id: str = Field(index=True, max_length=64)
    source_event_id: str = Field(max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    due_at: datetime
    last_updated: datetime = Field(default_factory=_now, index=True)
    overdue_flagged_at: datetime | None = None  # when the overdue check reported it
    content: str = Field(sa_column=Column(Text, nullable=False))


class TaskTransition(SQLModel, table=True):
    """Every status change of a Task: who, when, why (the audit trail of the workflow)."""

    __tablename__ = "task_transition"

    pk: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True, max_length=64)
    version: int
    from_status: str = Field(max_length=20)
    to_status: str = Field(max_length=20)
    actor: str = Field(max_length=120)
    actor_org: str = Field(max_length=120)
    role: str = Field(max_length=20)
    reason: str | None = None
    at: datetime


class TaskVersion(SQLModel, table=True):
    """Every version of every Task, for vread and _history."""

    __tablename__ = "task_version"

    task_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    content: str = Field(sa_column=Column(Text, nullable=False))


class EncounterRecord(SQLModel, table=True):
    __tablename__ = "encounter"

    id: str = Field(primary_key=True, max_length=64)
    task_id: str = Field(unique=True, max_length=64)
    acute_request_id: str = Field(index=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    act_class: str = Field(max_length=8)
    performer: str = Field(max_length=120)
    start: datetime
    content: str = Field(sa_column=Column(Text, nullable=False))


class SubscriptionRecord(SQLModel, table=True):
    """A partner's rest-hook subscription on Tasks it owns (notified pull: id-only payloads)."""

    __tablename__ = "subscription"

    id: str = Field(primary_key=True, max_length=64)
    owner_org: str = Field(index=True, max_length=120)  # whose Tasks: always the subscriber's own organisation
    endpoint: str = Field(max_length=500)
    headers: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    status: str = Field(default="requested", max_length=12)  # requested | active | error | off
    heartbeat_seconds: int = 60
    events_since_start: int = 0
    error: str | None = Field(default=None, max_length=500)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=_now)
    last_sent_at: datetime | None = None
    # A worker claims a subscription until then, so that several workers never send its events twice.
    lease_until: datetime | None = None
    content: str = Field(sa_column=Column(Text, nullable=False))


class Notification(SQLModel, table=True):
    """One event of one subscription, written with the Task change; sent in event-number order."""

    __tablename__ = "notification"
    __table_args__ = (UniqueConstraint("subscription_id", "event_number"),
                      Index("ix_notification_pending", "subscription_id", "delivered_at"))

    pk: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(max_length=64)
    event_number: int
    focus: str = Field(max_length=200)  # e.g. "Task/abc"
    created_at: datetime = Field(default_factory=_now)
    first_failure_at: datetime | None = None
    next_attempt_at: datetime | None = None
    attempts: int = 0
    delivered_at: datetime | None = None


class DeliveryAttempt(SQLModel, table=True):
    """Every attempt to deliver a handshake, heartbeat or notification, and what the receiver answered."""

    __tablename__ = "delivery_attempt"

    pk: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=20)  # handshake | heartbeat | event-notification
    event_number: int | None = None
    at: datetime = Field(default_factory=_now)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)


class EpisodeRecord(SQLModel, table=True):
    """EpisodeOfCare per patient and condition: care team, case manager and the lead practitioner."""

    __tablename__ = "episode"
    __table_args__ = (UniqueConstraint("pseudonym", "condition"),)

    id: str = Field(primary_key=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    condition: str = Field(max_length=200)
    status: str = Field(default="active", max_length=16)
    care_team: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # org tokens
    case_manager: str | None = Field(default=None, max_length=100)
    lead: str | None = Field(default=None, max_length=120)  # the hoofdbehandelaar's organisation
    started_at: datetime = Field(default_factory=_now)


class LeadHandover(SQLModel, table=True):
    """A proposed handover of the hoofdbehandelaar role; it takes effect when the receiver accepts."""

    __tablename__ = "lead_handover"

    id: str = Field(primary_key=True, max_length=64)
    episode_id: str = Field(index=True, max_length=64)
    from_lead: str | None = Field(default=None, max_length=120)
    to_lead: str = Field(max_length=120)
    reason: str = Field(max_length=500)
    status: str = Field(default="proposed", max_length=12)  # proposed | accepted | declined
    proposed_by: str = Field(max_length=100)
    proposed_at: datetime = Field(default_factory=_now)
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: datetime | None = None


class TimelineEntry(SQLModel, table=True):
    """One thing that happened to a patient, in any organisation: the case manager's single timeline."""

    __tablename__ = "timeline_entry"
    __table_args__ = (Index("ix_timeline_patient_at", "pseudonym", "at"),)

    pk: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(max_length=64)
    at: datetime
    kind: str = Field(max_length=30)  # referral | triage | task | contact | handover | note
    organisation: str | None = Field(default=None, max_length=120)
    actor: str | None = Field(default=None, max_length=100)
    text: str = Field(sa_column=Column(Text, nullable=False))
    reference: str | None = Field(default=None, max_length=200)
    # What happened as data (JSON, console/timeline.py reads it), so the console says it in its own language;
    # `text` stays the Dutch sentence of record (entries from before have only that).
    facts: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LinkedCall(SQLModel, table=True):
    """A later call, walk-in or referral the front door linked to an open acute request, with its words
    (linked-contact-recorded): what the case manager reads on the timeline. One row per Communication id, so a
    redelivery or a replay changes nothing; it needs neither the request's triage nor the other calls first."""

    __tablename__ = "linked_call"

    id: str = Field(primary_key=True, max_length=80)  # the front door's Communication id: <request id>-<n>
    acute_request_id: str = Field(index=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    number: int  # the request's running count of linked contacts
    channel: str = Field(max_length=16)  # referral | phone | walk-in
    caller: str | None = Field(default=None, max_length=16)  # patient | relative | carer | professional
    callback_phone: str | None = Field(default=None, max_length=32)
    complaint: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    received_at: datetime
    recorded_at: datetime = Field(default_factory=_now)


class CoordinatedPatient(SQLModel, table=True):
    """A patient coordination holds Tasks for, as the front door last told it (patient-changed): the FHIR Patient
    at its newest version, with the columns a case manager searches by. Never leaves coordination but to those
    who treat or coordinate the patient (Task `_include`, the case-manager console)."""

    __tablename__ = "coordinated_patient"
    __table_args__ = (Index("ix_coordinated_patient_birth_date", "birth_date"),)

    id: str = Field(primary_key=True, max_length=64)  # the front door's Patient id
    pseudonym: str = Field(index=True, max_length=64)
    version: int = 0  # meta.versionId at the front door
    last_updated: datetime  # meta.lastUpdated at the front door
    name: str = Field(default="", max_length=300)
    birth_date: str | None = Field(default=None, max_length=10)
    bsn: str | None = Field(default=None, index=True, max_length=9)
    received_at: datetime = Field(default_factory=_now)
    content: str = Field(sa_column=Column(Text, nullable=False))


TABLES = [m.__table__ for m in (RoutedRequest, TaskRecord, TaskTransition, TaskVersion,  # type: ignore[attr-defined]
                                EncounterRecord, SubscriptionRecord, Notification, DeliveryAttempt, EpisodeRecord,
                                LeadHandover, TimelineEntry, CoordinatedPatient, LinkedCall)]
