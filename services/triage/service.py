"""Use cases of the front door: accept referrals and contacts, keep one acute request per need, triage.

Functions take the session and the caller explicitly and never commit; the edge commits once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.triage import events
from services.triage.domain.referral import Referral, read_referral
from services.triage.domain.rules import DISPOSITIONS, URGENCIES, due_by, worklist_rank
from services.triage.models import (
    AcuteRequest,
    BundleReceipt,
    LinkedContact,
    PatientRecord,
    ResourceIdentifier,
    StoredResource,
    TriageDecision,
)
from shared.auth import Caller
from shared.bus.envelope import Event
from shared.bus.outbox import enqueue
from shared.fhir import FhirError, Issue, dumps, loads, resolve_bundle_references
from shared.identifiers import BSN_SYSTEM, is_valid_bsn, parse_org, pseudonym, pseudonym_for_unidentified
from shared.region import FRONT_DOOR, ORGANISATIONS, organisation

OPEN_STATUSES = ("open", "triaged")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything is stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class IntakeResult:
    response: dict[str, Any]
    created: bool
    acute_request_id: str | None = None
    pseudonym: str | None = None


async def _receipt(session: AsyncSession, key: str) -> dict[str, Any] | None:
    found = await session.get(BundleReceipt, key)
    return loads(found.response) if found else None


def _replayed(response: dict[str, Any]) -> dict[str, Any]:
    """A retried transaction answers with the first outcome, marked as not newly created."""
    copy = loads(dumps(response))
    for entry in copy.get("entry", []):
        if entry.get("response", {}).get("status", "").startswith("201"):
            entry["response"]["status"] = "200 OK"
    return copy


def _sr_keys(referral: Referral) -> list[str]:
    return [f"ServiceRequest:{i.get('system', '')}|{i['value']}"
            for i in referral.service_request.resource.get("identifier", []) if isinstance(i, dict) and i.get("value")]


async def _find_by_identifier(session: AsyncSession, resource_type: str, system: str, value: str) -> str | None:
    row = (await session.execute(select(ResourceIdentifier.resource_id).where(
        ResourceIdentifier.resource_type == resource_type, ResourceIdentifier.system == system,
        ResourceIdentifier.value == value))).first()
    return row[0] if row else None


def _parse_if_none_exist(query: str) -> tuple[str, str] | None:
    key, _, token = query.partition("=")
    if key != "identifier" or "|" not in token:
        return None
    system, _, value = token.partition("|")
    return system, value


def _patient_display(patient: dict[str, Any]) -> str:
    for name in patient.get("name", []) or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return ""


async def accept_referral(session: AsyncSession, *, bundle: dict[str, Any], caller: Caller,
                          traceparent: str | None, pseudonym_key: bytes) -> IntakeResult:
    """Store a referral Bundle all or nothing; a retry of the same Bundle or ServiceRequest changes nothing."""
    bundle_ident = bundle.get("identifier") if isinstance(bundle.get("identifier"), dict) else None
    if bundle_ident and bundle_ident.get("value"):
        stored = await _receipt(session, f"Bundle:{bundle_ident.get('system', '')}|{bundle_ident['value']}")
        if stored:
            return IntakeResult(_replayed(stored), created=False)
    outcome = read_referral(bundle)
    if isinstance(outcome, list):
        raise FhirError(422, outcome)
    referral = outcome
    for key in _sr_keys(referral):
        stored = await _receipt(session, key)
        if stored:
            return IntakeResult(_replayed(stored), created=False)

    now = _now()
    assigned: dict[str, str] = {}
    statuses: dict[int, str] = {}
    reused: set[int] = set()
    for entry in referral.entries:
        existing: str | None = None
        if entry is referral.patient and referral.bsn:
            existing = await _find_by_identifier(session, "Patient", BSN_SYSTEM, referral.bsn)
        elif entry.if_none_exist:
            parsed = _parse_if_none_exist(entry.if_none_exist)
            if parsed:
                existing = await _find_by_identifier(session, entry.type, *parsed)
        resource_id = existing or new_id()
        if existing:
            reused.add(entry.index)
        statuses[entry.index] = "200 OK" if existing else "201 Created"
        if entry.full_url:
            assigned[entry.full_url] = f"{entry.type}/{resource_id}"
        entry.resource = {**entry.resource, "id": resource_id}

    resolved = resolve_bundle_references({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": e.full_url, "resource": e.resource} for e in referral.entries]}, assigned)
    for entry, raw in zip(referral.entries, resolved["entry"], strict=True):
        entry.resource = raw["resource"]

    if referral.patient is not None:
        patient_id = referral.patient.resource["id"]
    else:
        assert referral.patient_reference
        patient_id = referral.patient_reference.split("/", 1)[1]
        if await session.get(StoredResource, ("Patient", patient_id)) is None:
            raise FhirError(422, Issue("error", "not-found", f"{referral.patient_reference} is not known here",
                                       (f"{referral.service_request.path}.subject",)))

    request_id = new_id()
    record = await session.get(PatientRecord, patient_id)
    if record is None:
        key = pseudonym(referral.bsn, pseudonym_key) if referral.bsn else pseudonym_for_unidentified(
            request_id, pseudonym_key)
        patient_res = referral.patient.resource if referral.patient else {}
        record = PatientRecord(id=patient_id, pseudonym=key, bsn=referral.bsn,
                               display_name=_patient_display(patient_res), birth_date=patient_res.get("birthDate"))
        session.add(record)

    response_entries = []
    for entry in referral.entries:
        rid = entry.resource["id"]
        if entry.index not in reused:
            meta = {**entry.resource.get("meta", {}), "versionId": "1", "lastUpdated": now.isoformat()}
            entry.resource = {**entry.resource, "meta": meta}
            session.add(StoredResource(resource_type=entry.type, id=rid, last_updated=now, owner_org=caller.org,
                                       patient_id=patient_id if entry.type != "Organization" else None,
                                       status=entry.resource.get("status"), content=dumps(entry.resource)))
            for ident in entry.resource.get("identifier", []) or []:
                if isinstance(ident, dict) and ident.get("system") and ident.get("value"):
                    session.add(ResourceIdentifier(resource_type=entry.type, system=ident["system"],
                                                   value=str(ident["value"]), resource_id=rid))
        response_entries.append({"response": {"status": statuses[entry.index],
                                              "location": f"{entry.type}/{rid}/_history/1", "etag": 'W/"1"',
                                              "lastModified": now.isoformat()}})

    sr = referral.service_request.resource
    open_request = await _open_request_for(session, record.pseudonym)
    if open_request is not None:
        session.add(LinkedContact(acute_request_id=open_request.id, channel="referral",
                                  service_request_id=sr["id"], received_at=now))
        request = open_request
    else:
        request = AcuteRequest(id=request_id, pseudonym=record.pseudonym, patient_id=patient_id, channel="referral",
                               service_request_id=sr["id"], referral_priority=referral.priority,
                               complaint=_complaint(sr), uzovi=referral.uzovi, submitted_by=caller.org,
                               received_at=now)
        session.add(request)
    enqueue(session, events.referral_received(request, sr, traceparent=traceparent))

    response = {"resourceType": "Bundle", "id": new_id(), "type": "transaction-response", "entry": response_entries}
    text = dumps(response)
    keys = _sr_keys(referral)
    if referral.bundle_identifier:
        keys.append(f"Bundle:{referral.bundle_identifier}")
    for key in keys:
        session.add(BundleReceipt(identifier=key, response=text))
    return IntakeResult(response, created=True, acute_request_id=request.id, pseudonym=request.pseudonym)


def _complaint(sr: dict[str, Any]) -> str:
    texts = [sr.get("code", {}).get("text", "")]
    texts += [r.get("text", "") for r in sr.get("reasonCode", []) or []]
    texts += [n.get("text", "") for n in sr.get("note", []) or []]
    return "; ".join(t for t in texts if t)[:2000]


async def _open_request_for(session: AsyncSession, key: str) -> AcuteRequest | None:
    query = (select(AcuteRequest)
             .where(AcuteRequest.pseudonym == key, AcuteRequest.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
             .order_by(AcuteRequest.received_at))
    return (await session.execute(query)).scalars().first()


@dataclass
class ContactInput:
    channel: str
    bsn: str | None
    name: str
    birth_date: str | None
    uzovi: str | None
    complaint: str


async def record_contact(session: AsyncSession, *, contact: ContactInput, caller: Caller,
                         pseudonym_key: bytes) -> tuple[AcuteRequest, bool]:
    """A phone call or walk-in recorded by a nurse; returns the request and whether it was linked to an open one."""
    if contact.bsn is not None and not is_valid_bsn(contact.bsn):
        raise FhirError(422, Issue("error", "value", "BSN fails the 11-proof", ("patient.bsn",)))
    now = _now()
    request_id = new_id()
    record: PatientRecord | None = None
    if contact.bsn:
        query = select(PatientRecord).where(PatientRecord.bsn == contact.bsn)
        record = (await session.execute(query)).scalars().first()
    if record is None:
        patient_id = new_id()
        key = pseudonym(contact.bsn, pseudonym_key) if contact.bsn else pseudonym_for_unidentified(
            request_id, pseudonym_key)
        resource: dict[str, Any] = {"resourceType": "Patient", "id": patient_id,
                                    "meta": {"versionId": "1", "lastUpdated": now.isoformat()}}
        if contact.bsn:
            resource["identifier"] = [{"system": BSN_SYSTEM, "value": contact.bsn}]
            session.add(ResourceIdentifier(resource_type="Patient", system=BSN_SYSTEM, value=contact.bsn,
                                           resource_id=patient_id))
        if contact.name:
            resource["name"] = [{"text": contact.name}]
        if contact.birth_date:
            resource["birthDate"] = contact.birth_date
        session.add(StoredResource(resource_type="Patient", id=patient_id, last_updated=now, owner_org=caller.org,
                                   patient_id=patient_id, content=dumps(resource)))
        record = PatientRecord(id=patient_id, pseudonym=key, bsn=contact.bsn, display_name=contact.name,
                               birth_date=contact.birth_date)
        session.add(record)
    open_request = await _open_request_for(session, record.pseudonym)
    if open_request is not None:
        session.add(LinkedContact(acute_request_id=open_request.id, channel=contact.channel, received_at=now))
        return open_request, True
    request = AcuteRequest(id=request_id, pseudonym=record.pseudonym, patient_id=record.id, channel=contact.channel,
                           complaint=contact.complaint, uzovi=contact.uzovi, submitted_by=caller.org, received_at=now)
    session.add(request)
    return request, False


@dataclass
class TriageInput:
    urgency: str
    disposition: str
    assigned_organization: str
    note: str


async def triage(session: AsyncSession, *, request_id: str, decision: TriageInput, caller: Caller,
                 codesystem_base: str, traceparent: str | None) -> AcuteRequest:
    issues = []
    if decision.urgency not in URGENCIES:
        issues.append(Issue("error", "value", f"urgency must be one of {', '.join(URGENCIES)}", ("urgency",)))
    if decision.disposition not in DISPOSITIONS:
        issues.append(Issue("error", "value", f"disposition must be one of {', '.join(DISPOSITIONS)}",
                            ("disposition",)))
    org = None
    try:
        org = organisation(*parse_org(decision.assigned_organization))
        if org is None or org.kind == "insurer":
            issues.append(Issue("error", "not-found", "assigned_organization is not a care provider in the region's "
                                                      "directory", ("assigned_organization",)))
    except ValueError as exc:
        issues.append(Issue("error", "value", str(exc), ("assigned_organization",)))
    if issues:
        raise FhirError(422, issues)
    assert org is not None
    request = await session.get(AcuteRequest, request_id, with_for_update=True)
    if request is None:
        raise FhirError(404, Issue("error", "not-found", f"acute request {request_id} does not exist"))
    if request.status != "open":
        raise FhirError(409, Issue("error", "conflict", f"acute request {request_id} is already {request.status}; "
                                                        "it is not triaged twice"))
    now = _now()
    request.status = "triaged"
    request.urgency = decision.urgency
    request.disposition = decision.disposition
    request.assigned_org = org.token
    request.triaged_at = now
    request.triaged_by = caller.subject
    request.due_at = due_by(decision.urgency, _aware(request.received_at))
    request.received_at = _aware(request.received_at)
    session.add(request)
    session.add(TriageDecision(acute_request_id=request.id, urgency=decision.urgency,
                               disposition=decision.disposition, assigned_org=org.token, note=decision.note,
                               decided_by=caller.subject, decided_at=now))
    enqueue(session, events.triage_completed(request, note=decision.note, codesystem_base=codesystem_base,
                                             traceparent=traceparent))
    return request


async def worklist(session: AsyncSession, *, statuses: tuple[str, ...]) -> list[AcuteRequest]:
    rows = list((await session.execute(select(AcuteRequest).where(
        AcuteRequest.status.in_(statuses)))).scalars())  # type: ignore[attr-defined]
    return sorted(rows, key=lambda r: worklist_rank(urgency=r.urgency, referral_priority=r.referral_priority,
                                                    received_at=_aware(r.received_at)))


async def close_request(session: AsyncSession, event: Event) -> None:
    """Coordination closed the acute request: it leaves every open list here."""
    request_id = event.subject.rsplit("/", 1)[-1]
    request = await session.get(AcuteRequest, request_id)
    if request is not None and request.status != "closed":
        request.status = "closed"
        request.closed_at = _now()
        session.add(request)


def directory() -> list[dict[str, Any]]:
    return [{"name": o.name, "identifier": o.label, "token": o.token, "kind": o.kind,
             "dispositions": list(o.dispositions)} for o in ORGANISATIONS if o.kind != "insurer"]


async def read_resource(session: AsyncSession, *, resource_type: str, resource_id: str,
                        caller: Caller) -> tuple[dict[str, Any], str | None]:
    """The resource and the pseudonym of its patient."""
    row = await session.get(StoredResource, (resource_type, resource_id))
    if row is None or not _may_see(row, caller):
        raise FhirError(404, Issue("error", "not-found", f"{resource_type}/{resource_id} is not known"))
    return loads(row.content), await pseudonym_of(session, row.patient_id)


async def pseudonym_of(session: AsyncSession, patient_id: str | None) -> str | None:
    """The cross-service patient reference of a local Patient id (for audit events and events)."""
    record = await session.get(PatientRecord, patient_id) if patient_id else None
    return record.pseudonym if record else None


def _may_see(row: StoredResource, caller: Caller) -> bool:
    # A partner sees what it submitted; the front door sees everything that came in.
    return caller.org == FRONT_DOOR.token or row.owner_org == caller.org


async def search_service_requests(session: AsyncSession, *, caller: Caller, patient: str | None,
                                  status: str | None, last_updated: str | None, count: int) -> list[dict[str, Any]]:
    query = select(StoredResource).where(StoredResource.resource_type == "ServiceRequest")
    if caller.org != FRONT_DOOR.token:
        query = query.where(StoredResource.owner_org == caller.org)
    if patient:
        query = query.where(StoredResource.patient_id == patient.rsplit("/", 1)[-1])
    if status:
        query = query.where(StoredResource.status.in_(status.split(",")))  # type: ignore[union-attr]
    if last_updated:
        prefix, moment = _date_param(last_updated)
        column = StoredResource.last_updated
        query = query.where(column >= moment if prefix in ("ge", "gt") else column <= moment)
    rows = (await session.execute(query.order_by(StoredResource.last_updated.desc()).limit(count))).scalars()  # type: ignore[attr-defined]
    return [loads(r.content) for r in rows]


def _date_param(value: str) -> tuple[str, datetime]:
    prefix = value[:2] if value[:2] in ("ge", "gt", "le", "lt") else "ge"
    raw = value[2:] if value[:2] in ("ge", "gt", "le", "lt") else value
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise FhirError(400, Issue("error", "value", "_lastUpdated must be an ISO 8601 date or dateTime "
                                                     "with an optional ge/gt/le/lt prefix", ("_lastUpdated",))) from exc
    return prefix, moment if moment.tzinfo else moment.replace(tzinfo=UTC)
