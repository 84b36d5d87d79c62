"""Tables of shadow billing: facts received, derived prestation and shadow lines, tariffs, feed revisions."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class RequestFact(SQLModel, table=True):
    __tablename__ = "request_fact"

    id: str = Field(primary_key=True, max_length=64)
    pseudonym: str = Field(max_length=64)
    disposition: str | None = Field(default=None, max_length=32)
    uzovi: str | None = Field(default=None, max_length=4)
    triaged_at: datetime | None = None
    open_dbc: bool = False
    closed_at: datetime | None = None
    # Encounter ids the closing event lists: the line waits until every one of them has arrived.
    expected_contacts: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    # Set by a billing officer's correction: the request is not billed, for this reason.
    withdrawn_reason: str | None = Field(default=None, max_length=500)
    # Facts changed after the line locked: the ledger waits for a billing officer to apply them.
    changed_after_lock: bool = False


class OpenDbcReport(SQLModel, table=True):
    """A hospital's report that a patient has a running DBC: acute requests in that period are delimited."""

    __tablename__ = "open_dbc_report"

    pk: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(index=True, max_length=64)
    reference: str = Field(max_length=100)  # the hospital's own DBC number
    start: date
    end: date | None = None
    reported_by: str = Field(max_length=100)
    reported_org: str = Field(max_length=120)
    reported_at: datetime = Field(default_factory=_now)


class ContactFact(SQLModel, table=True):
    __tablename__ = "contact_fact"

    id: str = Field(primary_key=True, max_length=64)  # the Encounter id
    acute_request_id: str = Field(index=True, max_length=64)
    act_class: str = Field(max_length=8)
    performer: str = Field(max_length=120)
    start: datetime


class PrestationLine(SQLModel, table=True):
    """One line of the prestation ledger. A request's first line is its draft until it locks; after that
    lines are only added: a credit (quantity −1) cancels a line, a rebill (+1) replaces it, with a reason."""

    __tablename__ = "prestation_ledger"
    __table_args__ = (Index("ix_prestation_ledger_uzovi_period", "uzovi", "period"),
                      UniqueConstraint("acute_request_id", "sequence"))

    id: str = Field(primary_key=True, max_length=64)
    acute_request_id: str = Field(index=True, max_length=64)
    sequence: int = 1
    kind: str = Field(default="original", max_length=8)  # original | credit | rebill
    quantity: int = 1
    corrects: str | None = Field(default=None, max_length=64)
    code: str | None = Field(default=None, max_length=3)
    exclusion_reason: str | None = Field(default=None, max_length=40)
    uzovi: str | None = Field(default=None, max_length=4)
    period: str = Field(max_length=7)
    service_date: date
    unit_price_cents: int | None = None
    tariff_source: str | None = Field(default=None, max_length=100)
    shadow_amount_cents: int = 0
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    reason: str | None = Field(default=None, max_length=500)
    created_by: str = Field(default="derivation", max_length=100)
    created_at: datetime = Field(default_factory=_now)
    locks_at: datetime | None = None


class ShadowLine(SQLModel, table=True):
    """What the regular system would have billed for one delivered contact; never a claim."""

    __tablename__ = "shadow_ledger"

    pk: int | None = Field(default=None, primary_key=True)
    acute_request_id: str = Field(index=True, max_length=64)
    line_id: str = Field(index=True, max_length=64)  # the ledger line this shadow detail belongs to
    contact_id: str = Field(max_length=64)
    code: str = Field(max_length=20)
    amount_cents: int
    tariff_source: str = Field(max_length=100)


class TariffRow(SQLModel, table=True):
    """Integrated tariffs (key = UZOVI of the contract) and shadow tariffs (key = "shadow"), versioned by validity."""

    __tablename__ = "tariff"

    pk: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=20)
    code: str = Field(max_length=20)
    description: str = Field(max_length=200)
    price_cents: int
    valid_from: date
    valid_to: date | None = None
    source: str = Field(max_length=100)


class FeedRevision(SQLModel, table=True):
    __tablename__ = "feed_revision"

    uzovi: str = Field(primary_key=True, max_length=4)
    period: str = Field(primary_key=True, max_length=7)
    revision: int = Field(primary_key=True)
    document: str = Field(sa_column=Column(Text, nullable=False))
    generated_at: datetime = Field(default_factory=_now)


class FeedDirty(SQLModel, table=True):
    """A feed whose lines changed since its last revision; the publisher turns it into a new revision."""

    __tablename__ = "feed_dirty"

    uzovi: str = Field(primary_key=True, max_length=4)
    period: str = Field(primary_key=True, max_length=7)
    # Bumped by every change; the publisher removes the row only if no change came in while it built.
    changes: int = 1
    since: datetime = Field(default_factory=_now)


class EvaluationRequest(SQLModel, table=True):
    """The evaluation's read model of one acute request: what the experiment's measures need, no patient data
    beyond the pseudonym. Every column is merged order-independently (earliest, latest, largest), so replaying the
    topics in any order, or twice, gives the same row."""

    __tablename__ = "evaluation_request"

    id: str = Field(primary_key=True, max_length=64)
    pseudonym: str = Field(index=True, max_length=64)
    uzovi: str | None = Field(default=None, max_length=4)
    channel: str | None = Field(default=None, max_length=16)
    urgency: str | None = Field(default=None, max_length=4)  # of the latest triage
    disposition: str | None = Field(default=None, max_length=32)  # of the latest triage
    due_at: datetime | None = None  # of the latest triage
    received_at: datetime | None = Field(default=None, index=True)
    first_triaged_at: datetime | None = None
    last_triaged_at: datetime | None = None
    retriaged: bool = False
    linked_contacts: int = 0
    first_contact_at: datetime | None = None
    closed_at: datetime | None = None


TABLES = [m.__table__ for m in (RequestFact, OpenDbcReport, ContactFact, PrestationLine, ShadowLine, TariffRow,  # type: ignore[attr-defined]
                                FeedRevision, FeedDirty, EvaluationRequest)]
