"""Tables of the triage service: stored FHIR resources, acute requests and triage decisions."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class StoredResource(SQLModel, table=True):
    __tablename__ = "fhir_resource"
    __table_args__ = (Index("ix_fhir_resource_type_patient", "resource_type", "patient_id"),)

    resource_type: str = Field(primary_key=True, max_length=64)
    id: str = Field(primary_key=True, max_length=64)
    version_id: int = 1
    last_updated: datetime = Field(default_factory=_now, index=True)
    patient_id: str | None = Field(default=None, max_length=64)
    status: str | None = Field(default=None, max_length=32)
    owner_org: str | None = Field(default=None, max_length=120)  # the partner that submitted it
    content: str = Field(sa_column=Column(Text, nullable=False))


class ResourceIdentifier(SQLModel, table=True):
    """Business identifiers, unique per resource type: the basis of conditional create."""

    __tablename__ = "fhir_identifier"
    __table_args__ = (UniqueConstraint("resource_type", "system", "value"),)

    pk: int | None = Field(default=None, primary_key=True)
    resource_type: str = Field(max_length=64)
    system: str = Field(max_length=200)
    value: str = Field(max_length=200)
    resource_id: str = Field(max_length=64)


class BundleReceipt(SQLModel, table=True):
    """A processed transaction, by Bundle.identifier, so a retried POST returns the first answer."""

    __tablename__ = "bundle_receipt"

    identifier: str = Field(primary_key=True, max_length=400)
    response: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=_now)


class PatientRecord(SQLModel, table=True):
    __tablename__ = "patient"

    id: str = Field(primary_key=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    bsn: str | None = Field(default=None, unique=True, max_length=9)
    display_name: str = Field(default="", max_length=300)
    birth_date: str | None = Field(default=None, max_length=10)


class AcuteRequest(SQLModel, table=True):
    __tablename__ = "acute_request"
    __table_args__ = (Index("ix_acute_request_status_received", "status", "received_at"),)

    id: str = Field(primary_key=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    patient_id: str | None = Field(default=None, max_length=64)
    channel: str = Field(max_length=16)  # referral | phone | walk-in
    status: str = Field(default="open", max_length=16)  # open | triaged | closed
    service_request_id: str | None = Field(default=None, max_length=64)
    referral_priority: str | None = Field(default=None, max_length=16)
    # The referrer says the patient has a running DBC for this condition: billed in that DBC, not here.
    open_dbc: bool = False
    complaint: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    uzovi: str | None = Field(default=None, max_length=4)
    submitted_by: str = Field(max_length=120)
    received_at: datetime = Field(default_factory=_now)
    urgency: str | None = Field(default=None, max_length=2)
    disposition: str | None = Field(default=None, max_length=32)
    assigned_org: str | None = Field(default=None, max_length=120)
    due_at: datetime | None = None
    triaged_at: datetime | None = None
    triaged_by: str | None = Field(default=None, max_length=120)
    closed_at: datetime | None = None


class LinkedContact(SQLModel, table=True):
    """A later referral or call for a patient whose request is still open: linked, not triaged again."""

    __tablename__ = "linked_contact"

    pk: int | None = Field(default=None, primary_key=True)
    acute_request_id: str = Field(index=True, max_length=64)
    channel: str = Field(max_length=16)
    service_request_id: str | None = Field(default=None, max_length=64)
    received_at: datetime = Field(default_factory=_now)
    # What the contact said, so a second call is not reduced to "via phone" (a referral's words are in its
    # ServiceRequest, copied here for one place to read them).
    complaint: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    caller: str | None = Field(default=None, max_length=16)  # patient | relative | carer | professional
    callback_phone: str | None = Field(default=None, max_length=32)


class TriageDecision(SQLModel, table=True):
    __tablename__ = "triage_decision"

    pk: int | None = Field(default=None, primary_key=True)
    acute_request_id: str = Field(index=True, max_length=64)
    urgency: str = Field(max_length=2)
    disposition: str = Field(max_length=32)
    assigned_org: str = Field(max_length=120)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    decided_by: str = Field(max_length=120)
    decided_at: datetime = Field(default_factory=_now)
    retriage_reason: str | None = Field(default=None, max_length=500)  # set when the nurse chose to re-triage
    # Why the organisation was chosen although the directory has it closed at the due time (SPEC §6).
    closed_reason: str | None = Field(default=None, max_length=500)


class ReferralEntry(SQLModel, table=True):
    """A resource that came in with a referral's Bundle, by the referral's ServiceRequest: with the request's
    ServiceRequests and Patient, what a treatment grant on the acute request opens (services/triage/access.py)."""

    __tablename__ = "referral_entry"

    service_request_id: str = Field(primary_key=True, max_length=64)
    resource_type: str = Field(primary_key=True, max_length=64)
    resource_id: str = Field(primary_key=True, max_length=64)


class TaskOwnership(SQLModel, table=True):
    """One version of a coordination Task as `task-changed` reported it: the facts treatment grants are made of."""

    __tablename__ = "task_ownership"

    task_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    acute_request_id: str = Field(max_length=64)
    owner: str = Field(max_length=120)  # "system|value"
    status: str = Field(max_length=32)
    at: datetime  # the version's meta.lastUpdated, UTC


class TreatmentGrant(SQLModel, table=True):
    """An organisation's treatment relationship with an acute request through one Task, from `since` until
    `ended_at` (None: it still owns the Task); rebuilt from the Task's known versions (domain/grants.py)."""

    __tablename__ = "treatment_grant"
    __table_args__ = (Index("ix_treatment_grant_org_request", "org", "acute_request_id"),)

    pk: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(index=True, max_length=64)
    org: str = Field(max_length=120)  # "system|value"
    acute_request_id: str = Field(max_length=64)
    since: datetime
    ended_at: datetime | None = None


class OAuthClient(SQLModel, table=True):
    """A registered machine client: the organisation it acts for, its scopes and its public keys."""

    __tablename__ = "oauth_client"

    client_id: str = Field(primary_key=True, max_length=100)
    org: str = Field(max_length=120)  # "system|value"
    scopes: str = Field(sa_column=Column(Text, nullable=False))
    jwks: str = Field(default='{"keys": []}', sa_column=Column(Text, nullable=False, default='{"keys": []}'))
    jwks_uri: str | None = Field(default=None, max_length=500)
    secret_hash: str | None = Field(default=None, max_length=200)  # demo mode only
    registered_at: datetime = Field(default_factory=_now)


class UsedAssertion(SQLModel, table=True):
    """Client assertion ids seen, kept until the assertion expires: a replayed assertion is refused."""

    __tablename__ = "used_client_assertion"

    jti: str = Field(primary_key=True, max_length=200)
    client_id: str = Field(max_length=100)
    expires_at: datetime = Field(index=True)


class ConsoleAccount(SQLModel, table=True):
    """A person who logs in to the consoles; the password is stored as an scrypt hash only."""

    __tablename__ = "console_account"

    username: str = Field(primary_key=True, max_length=60)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=20)  # triagist | casemanager | declaratie | beheer | partner
    # A partner account works one organisation's Tasks ("system|value"); the other roles act for the front door.
    org: str | None = Field(default=None, max_length=120)
    password_hash: str = Field(max_length=200)
    created_by: str = Field(max_length=60)
    created_at: datetime = Field(default_factory=_now)
    # An admin disables an account instead of deleting it (the audit log keeps naming it): no login, no session.
    disabled: bool = False


class LoginSession(SQLModel, table=True):
    """One login at the authorization server (the `sid` of its id_tokens), shared by every console it opened.
    Logging out of one console, or the admin disabling the account, ends it, and with it every console's session."""

    __tablename__ = "login_session"

    sid: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=60, index=True)
    started_at: datetime = Field(default_factory=_now)
    ended_at: datetime | None = None


class LoginFailure(SQLModel, table=True):
    """Failed console logins, for lockout after repeated failures."""

    __tablename__ = "login_failure"

    pk: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, max_length=60)
    at: datetime = Field(default_factory=_now)


class AuthorizationCode(SQLModel, table=True):
    """A single-use code of the authorization-code flow, bound to its client, redirect and PKCE challenge."""

    __tablename__ = "authorization_code"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=60)
    redirect_uri: str = Field(max_length=500)
    code_challenge: str = Field(max_length=128)
    username: str = Field(max_length=60)
    nonce: str | None = Field(default=None, max_length=200)
    expires_at: datetime
    used: bool = False
    sid: str | None = Field(default=None, max_length=64)  # the login session the id_token will name


class UrgencyTarget(SQLModel, table=True):
    """The front door's target time per urgency, editable by the admin; empty minutes = next working day."""

    __tablename__ = "urgency_target"

    urgency: str = Field(primary_key=True, max_length=2)
    minutes: int | None = None
    changed_by: str = Field(default="defaults", max_length=100)
    changed_at: datetime = Field(default_factory=_now)


class DirectoryEntry(SQLModel, table=True):
    """Which organisation provides which follow-up actions, and in which hours (Europe/Amsterdam)."""

    __tablename__ = "directory_entry"

    org: str = Field(primary_key=True, max_length=120)  # "system|value"
    dispositions: str = Field(sa_column=Column(Text, nullable=False))  # space-separated codes
    hours: str = Field(default="00:00-24:00", max_length=20)
    weekdays_only: bool = False
    # Grows with every change the admin makes (the change's time in microseconds, at least one more than before, so
    # it keeps growing after a downgrade dropped it); directory-changed carries it so coordination never lets an
    # older entry overwrite a newer one.
    version: int = Field(default=1, sa_type=BigInteger)
    changed_by: str = Field(default="defaults", max_length=100)
    changed_at: datetime = Field(default_factory=_now)


TABLES = [m.__table__ for m in (StoredResource, ResourceIdentifier, BundleReceipt, PatientRecord,  # type: ignore[attr-defined]
                                AcuteRequest, LinkedContact, TriageDecision, ReferralEntry, TaskOwnership,
                                TreatmentGrant, OAuthClient, UsedAssertion, ConsoleAccount, LoginSession, LoginFailure,
                                AuthorizationCode, UrgencyTarget, DirectoryEntry)]
