"""Who may read what at the front door: the one access decision of its FHIR API, and the treatment grants it uses.

A partner reads what it submitted; the front door (URA 90000001) reads everything that came in. Besides, an
organisation that owns a coordination Task for an acute request, or owned one that ended less than the
treatment window ago (`TRIAGE_TREATMENT_ACCESS_DAYS`), reads that request's Patient, ServiceRequests (the
referral, referrals linked to it, the front door's own), Coverage and supporting resources (Condition,
Observation, QuestionnaireResponse), and nothing else of that patient (SPEC §10, treatment relationship).
Such a read names its grant (`Task/<id>`), which the audit record carries. Grants are kept from
`regiozorg.coordination.task-changed.v1` by `on_task_changed`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Select, Table, bindparam, delete, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage.domain.grants import TaskVersion, grants_of, read_task_change
from services.triage.models import (
    AcuteRequest,
    LinkedContact,
    PatientRecord,
    ReferralEntry,
    StoredResource,
    TaskOwnership,
    TreatmentGrant,
)
from shared.auth import Caller
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.region import FRONT_DOOR
from shared.writes import Writes

# What a treatment grant opens of an acute request (SPEC §10): never the patient's other requests, nor types
# a referral may carry beyond these (medication, allergies, documents stay with their submitter).
TREATMENT_TYPES = frozenset({"Patient", "ServiceRequest", "Coverage", "Condition", "Observation",
                             "QuestionnaireResponse"})
_CHUNK = 400  # bound the bind variables of one statement
OWNERSHIP: Table = TaskOwnership.__table__  # type: ignore[attr-defined]
GRANTS: Table = TreatmentGrant.__table__  # type: ignore[attr-defined]
_DROP_GRANTS = delete(GRANTS).where(GRANTS.c.task_id == bindparam("task"))


@dataclass(frozen=True)
class Access:
    """The caller may read the resource; `grant` is the Task (`Task/<id>`) whose treatment relationship opened
    it, None when the caller submitted it or is the front door."""

    grant: str | None = None


def submitted(row: StoredResource, caller: Caller) -> bool:
    """The tenancy of intake: the front door sees everything that came in, a partner what it submitted (also
    what a referral may point at by reference)."""
    return caller.org == FRONT_DOOR.token or row.owner_org == caller.org


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _live_grants(org: str, *, at: datetime, window: timedelta) -> Select[tuple[str, str, datetime | None]]:
    """The grants of `org` that open data at `at`: running, or ended less than `window` before."""
    return select(TreatmentGrant.acute_request_id, TreatmentGrant.task_id, TreatmentGrant.ended_at).where(
        TreatmentGrant.org == org,
        or_(TreatmentGrant.ended_at.is_(None), TreatmentGrant.ended_at > at - window))  # type: ignore[union-attr,operator]


def findable_service_requests(caller: Caller, *, at: datetime, window: timedelta) -> ColumnElement[bool]:
    """A condition on `StoredResource` rows for a ServiceRequest search: those the caller submitted, and the
    ServiceRequests of acute requests it holds a live grant on. It narrows the search in the database; `decide`
    still has the last word on every row found."""
    if caller.org == FRONT_DOOR.token:
        return true()
    granted = _live_grants(caller.org, at=at, window=window).with_only_columns(TreatmentGrant.acute_request_id)
    own = select(AcuteRequest.service_request_id).where(AcuteRequest.id.in_(granted))  # type: ignore[attr-defined]
    linked = select(LinkedContact.service_request_id).where(
        LinkedContact.acute_request_id.in_(granted))  # type: ignore[attr-defined]
    return or_(StoredResource.owner_org == caller.org, StoredResource.id.in_(own),  # type: ignore[attr-defined]
               StoredResource.id.in_(linked))  # type: ignore[attr-defined]


async def decide(session: AsyncSession, *, caller: Caller, rows: Sequence[StoredResource], at: datetime,
                 window: timedelta) -> dict[tuple[str, str], Access]:
    """The access decision for stored resources, used by every read and search: each (type, id) the caller may
    read maps to its Access (naming the granting Task when a treatment grant opened it); a resource it may not
    read is absent. `at` is the moment of the read (UTC), `window` how long an ended grant still opens data.

    Of several grants that open a resource the running one is named, else the one that ended last.
    """
    decided: dict[tuple[str, str], Access] = {}
    treated: list[StoredResource] = []
    for row in rows:
        if submitted(row, caller):
            decided[(row.resource_type, row.id)] = Access()
        elif row.resource_type in TREATMENT_TYPES and row.patient_id:
            treated.append(row)
    if not treated:
        return decided
    patients = {row.patient_id for row in treated if row.patient_id}
    pseudonyms = set((await session.execute(select(PatientRecord.pseudonym).where(
        PatientRecord.id.in_(sorted(patients))))).scalars())  # type: ignore[attr-defined]
    if not pseudonyms:
        return decided
    query = _live_grants(caller.org, at=at, window=window).join(
        AcuteRequest, AcuteRequest.id == TreatmentGrant.acute_request_id).where(
        AcuteRequest.pseudonym.in_(sorted(pseudonyms)))  # type: ignore[attr-defined]
    grants = sorted((await session.execute(query)).all(),
                    key=lambda g: (g[2] is not None, -_aware(g[2]).timestamp() if g[2] else 0.0, g[1]))
    if not grants:
        return decided
    contents = await request_contents(session, {request_id for request_id, _, _ in grants})
    for row in treated:
        key = (row.resource_type, row.id)
        task = next((task for request_id, task, _ in grants if key in contents.get(request_id, set())), None)
        if task is not None:
            decided[key] = Access(grant=f"Task/{task}")
    return decided


async def request_contents(session: AsyncSession, request_ids: Iterable[str]) -> dict[str, set[tuple[str, str]]]:
    """Per acute request, the (type, id) of what a treatment grant on it opens: its Patient, its ServiceRequests
    (`AcuteRequest.service_request_id`: the partner's referral or the front door's own; those of referrals
    linked to it) and what came in with each of them (`referral_entry`), of the treatment types only."""
    ids = sorted(set(request_ids))
    contents: dict[str, set[tuple[str, str]]] = {}
    service_requests: dict[str, str] = {}  # ServiceRequest id -> acute request id
    for start in range(0, len(ids), _CHUNK):
        part = ids[start:start + _CHUNK]
        for request_id, patient_id, sr_id in await session.execute(select(
                AcuteRequest.id, AcuteRequest.patient_id, AcuteRequest.service_request_id).where(
                AcuteRequest.id.in_(part))):  # type: ignore[attr-defined]
            found = contents.setdefault(request_id, set())
            if patient_id:
                found.add(("Patient", patient_id))
            if sr_id:
                service_requests[sr_id] = request_id
        for request_id, sr_id in await session.execute(select(
                LinkedContact.acute_request_id, LinkedContact.service_request_id).where(
                LinkedContact.acute_request_id.in_(part),  # type: ignore[attr-defined]
                LinkedContact.service_request_id.is_not(None))):  # type: ignore[union-attr]
            service_requests[sr_id] = request_id
    for sr_id, request_id in service_requests.items():
        contents.setdefault(request_id, set()).add(("ServiceRequest", sr_id))
    srs = sorted(service_requests)
    for start in range(0, len(srs), _CHUNK):
        for entry in (await session.execute(select(ReferralEntry).where(
                ReferralEntry.service_request_id.in_(srs[start:start + _CHUNK])))).scalars():  # type: ignore[attr-defined]
            if entry.resource_type in TREATMENT_TYPES:
                contents[service_requests[entry.service_request_id]].add((entry.resource_type, entry.resource_id))
    return contents


async def on_task_changed(session: AsyncSession, event: Event) -> None:
    """Keep the treatment grants of a Task from a `task-changed` value: every version is kept once, and the
    Task's grants are made again from all its versions known here, in version order (domain/grants.py), so a
    repeated, late or out-of-order version never undoes a newer one.

    Raises PoisonMessage for a value that is no usable Task (docs/events.md).
    """
    try:
        change = read_task_change(event.json())
    except ValueError as exc:
        raise PoisonMessage(f"task-changed value: {exc}") from exc
    # Versions of one Task come in order on one partition; the lock covers a rebalance handing it over mid-way.
    known = list((await session.execute(select(TaskOwnership).where(
        TaskOwnership.task_id == change.task_id).with_for_update())).scalars())
    if any(row.version == change.version.version for row in known):
        return
    version = change.version
    versions = [TaskVersion(version=row.version, owner=row.owner, status=row.status, at=_aware(row.at))
                for row in known]
    # The version, its Task's grants dropped and made again: one statement on PostgreSQL, whose sub-statements
    # see one snapshot (the DELETE does not see the new grants). SQLite runs a unit's inserts before its other
    # statements, so there the grants are dropped first, on their own.
    writes = Writes()
    writes.insert(OWNERSHIP, task_id=change.task_id, version=version.version, acute_request_id=change.acute_request_id,
                  owner=version.owner, status=version.status, at=version.at)
    if session.get_bind().dialect.name == "postgresql":
        writes.statement(_DROP_GRANTS, {"task": change.task_id})
    else:
        await session.execute(_DROP_GRANTS, {"task": change.task_id})
    for grant in grants_of([*versions, version]):
        writes.insert(GRANTS, task_id=change.task_id, org=grant.org, acute_request_id=change.acute_request_id,
                      since=grant.since, ended_at=grant.ended_at)
    await writes.flush(session)
