"""Use cases of the front door: accept referrals and contacts, keep one acute request per need, triage.

Functions take the session and the caller explicitly and never commit; the edge commits once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, not_, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from services.triage import access, configuration, events
from services.triage.domain.referral import (
    DIRECTORY_TYPES,
    Entry,
    Referral,
    followed_references,
    read_referral,
    read_service_request,
)
from services.triage.domain.rules import AMSTERDAM, DISPOSITIONS, URGENCIES, due_by, worklist_rank
from services.triage.models import (
    AcuteRequest,
    BundleReceipt,
    LinkedContact,
    PatientRecord,
    ReferralEntry,
    ResourceIdentifier,
    StoredResource,
    TriageDecision,
)
from shared import rows as shared_rows
from shared import search
from shared.audit import AuditRecord
from shared.auth import Caller
from shared.bus.consumer import PoisonMessage
from shared.bus.envelope import Event
from shared.bus.outbox import enqueue, written
from shared.fhir import FhirError, Issue, dumps, loads, resolve_bundle_references
from shared.identifiers import BSN_SYSTEM, is_valid_bsn, parse_org, pseudonym, pseudonym_for_unidentified
from shared.region import organisation
from shared.writes import OUTBOX, outbox_row

OPEN_STATUSES = ("open", "triaged")
PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,30}")


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
    service_request_id: str
    acute_request_id: str | None = None
    pseudonym: str | None = None
    text: str | None = None  # `response` as FHIR JSON text, when it was serialised already (for the receipt)
    audited: bool = False  # its audit event was written with its rows (`AuditRow`)


# Makes the audit_event row of a stored referral from (acute request id, patient pseudonym), as
# shared.audit.entry does: the row goes into the referral's one statement.
AuditRow = Callable[[str, str], dict[str, Any]]


async def _lookup_receipts(session: AsyncSession, keys: list[str], seen: dict[str, str | None]) -> None:
    """Fill `seen` (receipt key -> the stored response text, None when there is no receipt) for the keys not
    looked up yet in this transaction: one query per 400 keys, none when all were asked before."""
    wanted = [key for key in dict.fromkeys(keys) if key not in seen]
    table = BundleReceipt.__table__  # type: ignore[attr-defined]
    for start in range(0, len(wanted), 400):  # bound the bind variables of one statement
        chunk = wanted[start:start + 400]
        seen.update(dict.fromkeys(chunk))
        seen.update(await shared_rows.fetch(
            session, postgres="SELECT identifier, response FROM bundle_receipt WHERE identifier = ANY($1::varchar[])",
            arguments=[chunk], portable=lambda chunk=chunk: select(table.c.identifier, table.c.response).where(
                table.c.identifier.in_(chunk)), begin=False))


async def _replay(session: AsyncSession, keys: list[str], caller: Caller,
                  seen: dict[str, str | None]) -> IntakeResult | None:
    """A retried transaction answers with the first outcome, marked as not newly created; the first key (in the
    order given) with a receipt decides. `seen` holds the receipts this transaction looked up already."""
    await _lookup_receipts(session, keys, seen)
    found = next((seen[key] for key in dict.fromkeys(keys) if seen.get(key) is not None), None)
    if found is None:
        return None
    response = loads(found)
    sr_id = _service_request_id(response)
    row = await session.get(StoredResource, ("ServiceRequest", sr_id))
    if row is None or not access.submitted(row, caller):
        # Another organisation's referral: neither its outcome nor its ids are this caller's to see.
        raise FhirError(409, Issue("error", "duplicate", "this identifier belongs to a referral of another "
                                                         "organisation; use an identifier system of your own"))
    for entry in response.get("entry", []):
        if entry.get("response", {}).get("status", "").startswith("201"):
            entry["response"]["status"] = "200 OK"
    return IntakeResult(response, created=False, service_request_id=sr_id)


def _service_request_id(response: dict[str, Any]) -> str:
    return next(e["response"]["location"].split("/")[1] for e in response["entry"]
                if e["response"]["location"].startswith("ServiceRequest/"))


def _replay_keys(referral: Referral) -> list[str]:
    """Receipts that make a retry idempotent: the ServiceRequest's identifiers, and the one its ifNoneExist names."""
    return _service_request_keys(referral.service_request.resource, referral.service_request.if_none_exist)


def _service_request_keys(resource: dict[str, Any], if_none_exist: str | None) -> list[str]:
    keys = [f"ServiceRequest:{i['system']}|{i['value']}" for i in _identifiers(resource)]
    parsed = _parse_if_none_exist(if_none_exist or "")
    if parsed:
        keys.append(f"ServiceRequest:{parsed[0]}|{parsed[1]}")
    return keys


def _likely_replay_keys(bundle: dict[str, Any]) -> list[str]:
    """The receipt keys of the ServiceRequests in a Bundle not validated yet (whatever is not shaped as FHIR is
    passed over), so that the receipts of a referral are looked up in one query with its Bundle.identifier."""
    keys: list[str] = []
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "ServiceRequest":
            continue
        request = entry.get("request")
        if_none_exist = request.get("ifNoneExist") if isinstance(request, dict) else None
        identifiers = resource.get("identifier")
        keys += _service_request_keys({"identifier": identifiers if isinstance(identifiers, list) else []},
                                      if_none_exist if isinstance(if_none_exist, str) else None)
    return keys


def _likely_lookups(bundle: dict[str, Any]) -> set[tuple[str, str, str]]:
    """What `_lookups` will ask of a Bundle's entries other than its ServiceRequest, read before the Bundle is
    validated (whatever is not shaped as FHIR is passed over), so that it goes in the query of the receipts."""
    found: set[tuple[str, str, str]] = set()
    entries = bundle.get("entry")
    for raw in entries if isinstance(entries, list) else []:
        resource = raw.get("resource") if isinstance(raw, dict) else None
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str) or kind == "ServiceRequest":
            continue
        request = raw.get("request")
        if_none_exist = request.get("ifNoneExist") if isinstance(request, dict) else None
        try:
            found.update(_lookups(Entry(0, None, resource, if_none_exist if isinstance(if_none_exist, str) else None)))
        except (TypeError, KeyError, AttributeError):
            continue  # refused by validation later
    return found


async def _look_up(session: AsyncSession, keys: list[str], seen: dict[str, str | None],
                   lookups: set[tuple[str, str, str]], identified: dict[tuple[str, str, str], str | None]) -> None:
    """`_lookup_receipts` and `_known_identifiers` at once: on PostgreSQL in one query when both fit one."""
    wanted = [key for key in dict.fromkeys(keys) if key not in seen]
    pairs = sorted(key for key in lookups if key not in identified)
    if not shared_rows.on_postgres(session) or not wanted or not pairs or len(wanted) > 400 or len(pairs) > 300:
        await _lookup_receipts(session, wanted, seen)
        await _known_identifiers(session, set(pairs), identified)
        return
    rows = await shared_rows.fetch(
        session, postgres="SELECT NULL, identifier, response, NULL FROM bundle_receipt "
                          "WHERE identifier = ANY($1::varchar[]) UNION ALL "
                          "SELECT i.resource_type, i.system, i.value, i.resource_id FROM fhir_identifier i "
                          "JOIN unnest($2::varchar[], $3::varchar[], $4::varchar[]) AS w(t, s, v) "
                          "ON i.resource_type = w.t AND i.system = w.s AND i.value = w.v",
        arguments=[wanted, *(list(column) for column in zip(*pairs, strict=True))],
        portable=lambda: select(), begin=False)  # never built: PostgreSQL only
    seen.update(dict.fromkeys(wanted))
    identified.update(dict.fromkeys(pairs))
    for kind, first, second, rid in rows:
        if kind is None:
            seen[first] = second
        else:
            identified[(kind, first, second)] = rid


def _identifiers(resource: dict[str, Any]) -> list[dict[str, str]]:
    return [{"system": str(i.get("system", "")), "value": str(i["value"])}
            for i in resource.get("identifier", []) or [] if isinstance(i, dict) and i.get("value")]


def _business_identifiers(entry: Entry) -> list[tuple[str, str, str]]:
    """(type, system, value) of the identifiers that name one resource; a value without a system names nothing."""
    return list(dict.fromkeys((entry.type, i["system"], i["value"]) for i in _identifiers(entry.resource)
                              if i["system"]))


async def _known_identifiers(session: AsyncSession, wanted: set[tuple[str, str, str]],
                             identified: dict[tuple[str, str, str], str | None]) -> dict[tuple[str, str, str], str]:
    """The stored resource id of each (type, system, value) of `wanted` that is known here, in one query per 300
    for those not in `identified` (what this transaction looked up already: the id, None when unknown), which is
    filled in."""
    pairs = sorted(key for key in wanted if key not in identified)
    identified.update(dict.fromkeys(pairs))
    known: dict[tuple[str, str, str], str] = {}
    table = ResourceIdentifier.__table__  # type: ignore[attr-defined]
    for start in range(0, len(pairs), 300):  # three bind variables each
        chunk = pairs[start:start + 300]
        rows = await shared_rows.fetch(
            session, postgres="SELECT i.resource_type, i.system, i.value, i.resource_id FROM fhir_identifier i "
                              "JOIN unnest($1::varchar[], $2::varchar[], $3::varchar[]) AS w(t, s, v) "
                              "ON i.resource_type = w.t AND i.system = w.s AND i.value = w.v",
            arguments=[list(column) for column in zip(*chunk, strict=True)],
            portable=lambda chunk=chunk: select(
                table.c.resource_type, table.c.system, table.c.value, table.c.resource_id).where(
                tuple_(table.c.resource_type, table.c.system, table.c.value).in_(chunk)), begin=False)
        known.update(((kind, system, value), rid) for kind, system, value, rid in rows)
    identified.update(known)
    return {key: rid for key in wanted if (rid := identified.get(key)) is not None}


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


async def _stored_targets(session: AsyncSession, resources: list[object], caller: Caller) -> dict[str, dict[str, Any]]:
    """The stored resources a referral points at and the caller may see, with the organisation of a stored
    PractitionerRole (one more hop), keyed by local reference."""
    found: dict[str, dict[str, Any]] = {}
    wanted = followed_references(resources)
    for _ in range(2):
        pairs = sorted(tuple(ref.split("/")) for ref in wanted - found.keys())
        loaded: dict[str, dict[str, Any]] = {}
        for start in range(0, len(pairs), 400):  # bound the bind variables of one statement
            rows = (await session.execute(select(StoredResource).where(
                tuple_(StoredResource.resource_type, StoredResource.id).in_(pairs[start:start + 400])))).scalars()
            loaded.update({f"{r.resource_type}/{r.id}": loads(r.content) for r in rows
                           if access.submitted(r, caller)})
        found.update(loaded)
        wanted = followed_references(loaded.values())
    return found


async def accept_referral(session: AsyncSession, *, bundle: dict[str, Any], caller: Caller,
                          traceparent: str | None, pseudonym_key: bytes, audit_row: AuditRow | None = None
                          ) -> IntakeResult:
    """Store a referral Bundle all or nothing; a retry of the same Bundle or ServiceRequest changes nothing.
    `audit_row`, when given, makes the audit event written with a stored referral's rows (the result says
    `audited`); a retry answered with the first outcome is not audited here.

    A stored referral is the transaction's last write (`_store`): the caller commits and writes nothing more in
    it."""
    bundle_ident = bundle.get("identifier") if isinstance(bundle.get("identifier"), dict) else None
    bundle_key = f"Bundle:{bundle_ident.get('system', '')}|{bundle_ident['value']}" \
        if bundle_ident and bundle_ident.get("value") else None
    seen: dict[str, str | None] = {}
    identified: dict[tuple[str, str, str], str | None] = {}
    # One query for the receipts of the Bundle and of its ServiceRequest (the Bundle's decides first) and the
    # identifiers its other entries may name stored resources by.
    await _look_up(session, [*([bundle_key] if bundle_key else []), *_likely_replay_keys(bundle)], seen,
                   _likely_lookups(bundle), identified)
    if bundle_key:
        replayed = await _replay(session, [bundle_key], caller, seen)
        if replayed:
            return replayed
    entries = bundle.get("entry")
    resources = [e.get("resource") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    outcome = read_referral(bundle, stored=await _stored_targets(session, resources, caller))
    if isinstance(outcome, list):
        raise FhirError(422, outcome)
    return await _store(session, outcome, caller=caller, traceparent=traceparent, pseudonym_key=pseudonym_key,
                        seen=seen, identified=identified, audit_row=audit_row)


async def create_service_request(session: AsyncSession, *, resource: dict[str, Any], if_none_exist: str | None,
                                 caller: Caller, traceparent: str | None, pseudonym_key: bytes,
                                 audit_row: AuditRow | None = None) -> IntakeResult:
    """A ServiceRequest posted on its own for a Patient stored here: the same rules, receipts, tenancy and audit
    as a referral Bundle (`accept_referral`)."""
    outcome = read_service_request(resource, if_none_exist=if_none_exist,
                                   stored=await _stored_targets(session, [resource], caller))
    if isinstance(outcome, list):
        raise FhirError(422, outcome)
    return await _store(session, outcome, caller=caller, traceparent=traceparent, pseudonym_key=pseudonym_key,
                        seen={}, identified={}, audit_row=audit_row)


def _lookups(entry: Entry) -> list[tuple[str, str, str]]:
    """The identifiers by which an entry may name a stored resource: its ifNoneExist, then its own."""
    parsed = _parse_if_none_exist(entry.if_none_exist or "")
    return [*([(entry.type, *parsed)] if parsed else []), *_business_identifiers(entry)]


def _existing(entry: Entry, known: dict[tuple[str, str, str], str],
              claimed: dict[tuple[str, str, str], str]) -> str | None:
    """The stored resource an entry is: named by its ifNoneExist, else by any business identifier already known
    here or earlier in the same Bundle (the same organisation or patient is never stored twice)."""
    parsed = _parse_if_none_exist(entry.if_none_exist or "")
    named = known.get((entry.type, *parsed)) if parsed else None
    if named:
        return named
    for key in _business_identifiers(entry):
        found = claimed.get(key) or known.get(key)
        if found:
            return found
    return None


async def _store(session: AsyncSession, referral: Referral, *, caller: Caller, traceparent: str | None,
                 pseudonym_key: bytes, seen: dict[str, str | None],
                 identified: dict[tuple[str, str, str], str | None], audit_row: AuditRow | None) -> IntakeResult:
    """Store a valid referral and its receipts, or answer a retry with the first outcome.

    New rows are written as plain rows, all in one statement on PostgreSQL (shared/rows.py), not as ORM objects:
    the ORM's unit of work cost more CPU than the rest of intake (tests/bench/profile_intake.py). The outbox
    events and the audit event go into that statement too. Rows that change (a known patient, an open request a
    contact is linked to) stay ORM objects."""
    replayed = await _replay(session, _replay_keys(referral), caller, seen)
    if replayed:
        return replayed

    now = _now()
    assigned: dict[str, str] = {}
    statuses: dict[int, str] = {}
    reused: set[int] = set()
    claimed: dict[tuple[str, str, str], str] = {}
    known = await _known_identifiers(session, {key for entry in referral.entries
                                               if entry is not referral.service_request for key in _lookups(entry)},
                                     identified)
    for entry in referral.entries:
        existing = None if entry is referral.service_request else _existing(entry, known, claimed)
        resource_id = existing or new_id()
        if existing:
            reused.add(entry.index)
        for key in _business_identifiers(entry):
            claimed.setdefault(key, resource_id)
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

    request_id = new_id()
    # A Patient stored just now under a new id has no record yet: no need to ask.
    new_patient = referral.patient is not None and referral.patient.index not in reused
    record = None if new_patient else await session.get(PatientRecord, patient_id)
    created_record = record is None
    if record is None:
        # A plain row, inserted below with the other new rows once its names are final.
        key = pseudonym(referral.bsn, pseudonym_key) if referral.bsn else pseudonym_for_unidentified(
            request_id, pseudonym_key)
        patient_res = referral.patient.resource if referral.patient else {}
        record_row = {"id": patient_id, "pseudonym": key, "bsn": referral.bsn,
                      "display_name": _patient_display(patient_res)[:300],  # the column's width
                      "birth_date": patient_res.get("birthDate")}
    else:
        record_row = {"pseudonym": record.pseudonym}
    patient_key = str(record_row["pseudonym"])
    if referral.patient is not None and not new_patient:
        # A known patient: what this referral says of them is newer than what the front door held.
        patient = await _update_patient(session, patient_id, referral.patient.resource, now=now, known=known)
    elif referral.patient is not None:
        patient = None  # stored below with the other new entries
    else:
        patient = await _stored_patient(session, patient_id)

    response_entries = []
    sr_id = referral.service_request.resource["id"]
    came_with = {(entry.type, entry.resource["id"]) for entry in referral.entries
                 if entry.type not in DIRECTORY_TYPES and entry is not referral.service_request}
    # What a treatment grant on this request opens (access.py).
    entry_rows = [{"service_request_id": sr_id, "resource_type": resource_type, "resource_id": rid}
                  for resource_type, rid in sorted(came_with)]
    resource_rows: list[dict[str, Any]] = []
    identifier_rows: list[dict[str, Any]] = []
    for entry in referral.entries:
        rid = entry.resource["id"]
        if entry.index not in reused:
            meta = {**entry.resource.get("meta", {}), "versionId": "1", "lastUpdated": now.isoformat()}
            entry.resource = {**entry.resource, "meta": meta}
            resource_rows.append({"resource_type": entry.type, "id": rid, "version_id": 1, "last_updated": now,
                                  "owner_org": caller.org,
                                  "patient_id": None if entry.type in DIRECTORY_TYPES else patient_id,
                                  "status": _searchable_status(entry.resource), "content": dumps(entry.resource)})
            identifier_rows += [{"resource_type": resource_type, "system": system, "value": value,
                                 "resource_id": rid} for resource_type, system, value in _business_identifiers(entry)]
        response_entries.append({"response": {"status": statuses[entry.index],
                                              "location": f"{entry.type}/{rid}/_history/1", "etag": 'W/"1"',
                                              "lastModified": now.isoformat()}})

    if referral.patient is not None and new_patient:
        patient = referral.patient.resource
    if patient is not None:
        _remember_names(record or record_row, patient)
    new_rows: list[tuple[Table, list[dict[str, Any]]]] = [
        (_table(PatientRecord), [record_row] if created_record else []), (_table(ReferralEntry), entry_rows),
        (_table(StoredResource), resource_rows), (_table(ResourceIdentifier), identifier_rows)]

    sr = referral.service_request.resource
    open_dbc = any(ext.get("url") == events.OPEN_DBC_EXTENSION and ext.get("valueBoolean") is True
                   for ext in sr.get("extension", []) or [])
    # A record made just now has no requests: its pseudonym is new (an unidentified patient's comes from this
    # request) or comes from a BSN no other record holds (the column is unique, so a concurrent twin fails).
    open_request = None if created_record else await _open_request_for(session, patient_key)
    published: list[Event] = []
    if open_request is not None:
        published += await _link(session, open_request, channel="referral", at=now, traceparent=traceparent,
                                 complaint=_complaint(sr), caller="professional", callback_phone=None)
        session.add(LinkedContact(acute_request_id=open_request.id, channel="referral",
                                  service_request_id=sr["id"], received_at=now, complaint=_complaint(sr),
                                  caller="professional"))
        open_request.open_dbc = open_request.open_dbc or open_dbc
        session.add(open_request)
        acute_id, request_uzovi = open_request.id, open_request.uzovi
    else:
        acute_id, request_uzovi = request_id, referral.uzovi
        new_rows.append((_table(AcuteRequest), [{
            "id": request_id, "pseudonym": patient_key, "patient_id": patient_id, "channel": "referral",
            "status": "open", "service_request_id": sr["id"], "referral_priority": referral.priority,
            "open_dbc": open_dbc, "complaint": _complaint(sr), "uzovi": referral.uzovi,
            "submitted_by": caller.org, "received_at": now}]))
    published.append(events.referral_received(acute_id, patient_key, sr, traceparent=traceparent))
    if patient is not None:
        published.append(events.patient_changed(patient, pseudonym=patient_key,
                                                uzovi=referral.uzovi or request_uzovi, traceparent=traceparent))
    # In the statement's one INSERT of outbox rows, in this order: the relay publishes them by seq.
    new_rows.append((OUTBOX, [outbox_row(event, at=now) for event in published]))
    written(session)  # the commit wakes the relay in-process (SQLite; PostgreSQL's trigger NOTIFYs)

    response = {"resourceType": "Bundle", "id": new_id(), "type": "transaction-response", "entry": response_entries}
    text = dumps(response)
    keys = [f"ServiceRequest:{i['system']}|{i['value']}" for i in _identifiers(sr)]
    if referral.bundle_identifier:
        keys.append(f"Bundle:{referral.bundle_identifier}")
    new_rows.append((_table(BundleReceipt), [{"identifier": key, "response": text, "created_at": now}
                                     for key in dict.fromkeys(keys)]))
    if audit_row is not None:
        new_rows.append((_table(AuditRecord), [audit_row(acute_id, patient_key)]))
    # Every new row of the referral in one statement on PostgreSQL (shared/rows.py); for a new patient the
    # transaction's only write, sent without BEGIN and COMMIT (its reads took no locks).
    await shared_rows.insert_all(session, new_rows, alone=True)
    return IntakeResult(response, created=True, service_request_id=sr["id"], acute_request_id=acute_id,
                        pseudonym=patient_key, text=text, audited=audit_row is not None)


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined]


def _searchable_status(resource: dict[str, Any]) -> str | None:
    # Not every type's status codes are checked on intake (Encounter, Observation); one that cannot be a code of
    # the column's width stays in the content only, rather than failing the whole referral on storage.
    status = resource.get("status")
    return status if isinstance(status, str) and len(status) <= 32 else None


def _complaint(sr: dict[str, Any]) -> str:
    texts = [sr.get("code", {}).get("text", "")]
    texts += [r.get("text", "") for r in sr.get("reasonCode", []) or []]
    texts += [n.get("text", "") for n in sr.get("note", []) or []]
    return "; ".join(t for t in texts if t)[:2000]


async def _link(session: AsyncSession, request: AcuteRequest, *, channel: str, at: datetime, complaint: str,
                caller: str | None, callback_phone: str | None, traceparent: str | None) -> list[Event]:
    """The events that a contact is being linked to the open `request`, for the caller to write to the outbox
    in this order: contact-linked (with the request's running count of linked contacts, this one included;
    counted before this contact's row is added), and the same contact with its words for coordination
    (linked-contact-recorded)."""
    linked = (await session.execute(select(func.count()).select_from(LinkedContact).where(
        LinkedContact.acute_request_id == request.id))).scalar_one()
    return [events.contact_linked(request, channel=channel, received_at=at, linked_so_far=linked + 1,
                                  traceparent=traceparent),
            events.linked_contact_recorded(request, channel=channel, received_at=at, linked_so_far=linked + 1,
                                           complaint=complaint, caller=caller, callback_phone=callback_phone,
                                           traceparent=traceparent)]


async def _open_request_for(session: AsyncSession, key: str) -> AcuteRequest | None:
    query = (select(AcuteRequest)
             .where(AcuteRequest.pseudonym == key, AcuteRequest.status.in_(OPEN_STATUSES))  # type: ignore[attr-defined]
             .order_by(AcuteRequest.received_at))
    return (await session.execute(query)).scalars().first()


async def _stored_patient(session: AsyncSession, patient_id: str) -> dict[str, Any] | None:
    row = await session.get(StoredResource, ("Patient", patient_id))
    return loads(row.content) if row is not None else None


def merged_patient(stored: dict[str, Any], newer: dict[str, Any], *,
                   only_if_missing: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What the front door knows of a patient after a later referral or contact (pure; no meta or id change).

    Every element the newer resource holds replaces the stored one (a new address, a new phone); elements it
    leaves out are kept; identifiers are joined, so a BSN is never lost. Elements named in `only_if_missing`
    are taken only when the stored Patient has none (a name typed for a lookup does not replace a referral's).
    """
    merged = dict(stored)
    for element, value in newer.items():
        if element in ("resourceType", "id", "meta", "identifier"):
            continue
        if element in only_if_missing and stored.get(element):
            continue
        merged[element] = value
    identifiers = list(stored.get("identifier", []) or [])
    seen = {(i.get("system"), i.get("value")) for i in identifiers}
    identifiers += [i for i in newer.get("identifier", []) or [] if (i.get("system"), i.get("value")) not in seen]
    if identifiers:
        merged["identifier"] = identifiers
    return merged


async def _update_patient(session: AsyncSession, patient_id: str, newer: dict[str, Any], *, now: datetime,
                          known: dict[tuple[str, str, str], str],
                          only_if_missing: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """Merge what a referral or contact says into the stored Patient: a new version when anything changed (the
    previous one stays readable at coordination until its patient-changed arrives), else the stored one."""
    row = await session.get(StoredResource, ("Patient", patient_id), with_for_update=True)
    if row is None:
        return None
    stored = loads(row.content)
    # An identifier that names another resource here is not this patient's to take.
    newer = {**newer, "identifier": [i for i in newer.get("identifier", []) or []
                                     if not isinstance(i, dict) or not i.get("system")
                                     or known.get(("Patient", i["system"], str(i.get("value")))) in (None, patient_id)]}
    merged = merged_patient(stored, newer, only_if_missing=only_if_missing)
    # The narrative alone (the same example sent as XML, then as JSON, differs in its whitespace) is no news.
    if {k: v for k, v in merged.items() if k not in ("meta", "text")} == \
            {k: v for k, v in stored.items() if k not in ("meta", "text")}:
        return stored
    for ident in _identifiers(merged):
        key = ("Patient", ident["system"], ident["value"])
        if ident["system"] and key not in known and ident not in _identifiers(stored):
            session.add(ResourceIdentifier(resource_type="Patient", system=ident["system"], value=ident["value"],
                                           resource_id=patient_id))
    row.version_id += 1
    merged["meta"] = {**stored.get("meta", {}), "versionId": str(row.version_id), "lastUpdated": now.isoformat()}
    row.content, row.last_updated = dumps(merged), now
    session.add(row)
    return merged


def _remember_names(record: PatientRecord | dict[str, Any], patient: dict[str, Any]) -> None:
    """The lookup columns follow the Patient (the nurse finds a patient by the name the front door knows now); a
    record not stored yet is its row (column name -> value)."""
    display = _patient_display(patient)[:300]
    current = record if isinstance(record, dict) else {"display_name": record.display_name,
                                                       "birth_date": record.birth_date}
    changes = {}
    if display and display != current.get("display_name"):
        changes["display_name"] = display
    if patient.get("birthDate") and patient["birthDate"] != current.get("birth_date"):
        changes["birth_date"] = patient["birthDate"]
    if isinstance(record, dict):
        record.update(changes)
    else:
        for column, value in changes.items():
            setattr(record, column, value)


@dataclass
class Address:
    line: str
    postal_code: str
    city: str


@dataclass
class ContactInput:
    channel: str
    bsn: str | None
    name: str
    birth_date: str | None
    uzovi: str | None
    complaint: str
    caller: str = "patient"  # patient | relative | carer | professional
    callback_phone: str | None = None
    address: Address | None = None
    # A patient the nurse chose from the lookup (a known patient without BSN is found by this id only).
    patient_id: str | None = None


def contact_patient_details(contact: ContactInput) -> dict[str, Any]:
    """The Patient elements a phone or walk-in contact tells (pure): name, birth date, home address, and the
    callback number, as the patient's own telecom when the patient called, else as a contact person's."""
    details: dict[str, Any] = {}
    if contact.name:
        details["name"] = [{"text": contact.name}]
    if contact.birth_date:
        details["birthDate"] = contact.birth_date
    if contact.address and any((contact.address.line, contact.address.postal_code, contact.address.city)):
        address: dict[str, Any] = {"use": "home"}
        if contact.address.line:
            address["line"] = [contact.address.line]
        if contact.address.postal_code:
            address["postalCode"] = contact.address.postal_code
        if contact.address.city:
            address["city"] = contact.address.city
        details["address"] = [address]
    if contact.callback_phone:
        phone = {"system": "phone", "value": contact.callback_phone}
        if contact.caller == "patient":
            details["telecom"] = [phone]
        else:
            details["contact"] = [{"relationship": [{"text": contact.caller}], "telecom": [phone]}]
    return details


def front_door_service_request(request: AcuteRequest, *, service_request_id: str, caller_org: str,
                               at: datetime) -> dict[str, Any]:
    """The front door's own ServiceRequest for a phone call or walk-in (pure): what a partner's referral is for a
    referral, so that a Task's focus always names a ServiceRequest at the front door."""
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": service_request_id,
        "meta": {"versionId": "1", "lastUpdated": at.isoformat()},
        "identifier": [{"system": events.ACUTE_REQUEST_SYSTEM, "value": request.id}],
        "extension": [{"url": events.CHANNEL_EXTENSION, "valueCode": request.channel}],
        "status": "active", "intent": "order",
        "code": {"text": "Beoordeling acute zorg"},
        "subject": {"reference": f"Patient/{request.patient_id}"},
        "requester": events.organisation_reference(caller_org),
        "authoredOn": at.isoformat(),
    }
    if request.complaint:
        resource["reasonCode"] = [{"text": request.complaint}]
    return resource


async def record_contact(session: AsyncSession, *, contact: ContactInput, caller: Caller, pseudonym_key: bytes,
                         traceparent: str | None = None) -> tuple[AcuteRequest, bool]:
    """A phone call or walk-in recorded by a nurse; returns the request and whether it was linked to an open one.

    A new patient is stored as a Patient; a known one (by BSN, else by the `patient_id` chosen from the lookup)
    gets what the contact tells of them (address, phone). Either way coordination hears of the patient
    (patient-changed). A new request gets the front door's own ServiceRequest."""
    if contact.bsn is not None and not is_valid_bsn(contact.bsn):
        raise FhirError(422, Issue("error", "value", "BSN fails the 11-proof", ("patient.bsn",)))
    if contact.callback_phone is not None and not PHONE.fullmatch(contact.callback_phone):
        raise FhirError(422, Issue("error", "value", "callback_phone must be a phone number: digits, optionally "
                                                     "a leading +, spaces, dashes or brackets", ("callback_phone",)))
    now = _now()
    request_id = new_id()
    record: PatientRecord | None = None
    if contact.bsn:
        query = select(PatientRecord).where(PatientRecord.bsn == contact.bsn)
        record = (await session.execute(query)).scalars().first()
    elif contact.patient_id:
        record = await session.get(PatientRecord, contact.patient_id)
        if record is None:
            raise FhirError(422, Issue("error", "not-found", "the chosen patient is not known here", ("patient",)))
    details = contact_patient_details(contact)
    patient: dict[str, Any] | None
    if record is None:
        patient_id = new_id()
        key = pseudonym(contact.bsn, pseudonym_key) if contact.bsn else pseudonym_for_unidentified(
            request_id, pseudonym_key)
        patient = {"resourceType": "Patient", "id": patient_id,
                   "meta": {"versionId": "1", "lastUpdated": now.isoformat()}}
        if contact.bsn:
            patient["identifier"] = [{"system": BSN_SYSTEM, "value": contact.bsn}]
            session.add(ResourceIdentifier(resource_type="Patient", system=BSN_SYSTEM, value=contact.bsn,
                                           resource_id=patient_id))
        patient.update(details)
        session.add(StoredResource(resource_type="Patient", id=patient_id, last_updated=now, owner_org=caller.org,
                                   patient_id=patient_id, content=dumps(patient)))
        record = PatientRecord(id=patient_id, pseudonym=key, bsn=contact.bsn, display_name=contact.name,
                               birth_date=contact.birth_date)
        session.add(record)
    else:
        patient = await _update_patient(session, record.id, details, now=now, known={},
                                        only_if_missing=frozenset({"name", "birthDate"}))
    open_request = await _open_request_for(session, record.pseudonym)
    if open_request is not None:
        for event in await _link(session, open_request, channel=contact.channel, at=now, traceparent=traceparent,
                                 complaint=contact.complaint, caller=contact.caller,
                                 callback_phone=contact.callback_phone):
            enqueue(session, event)
        session.add(LinkedContact(acute_request_id=open_request.id, channel=contact.channel, received_at=now,
                                  complaint=contact.complaint, caller=contact.caller,
                                  callback_phone=contact.callback_phone))
        request, linked = open_request, True
    else:
        request = AcuteRequest(id=request_id, pseudonym=record.pseudonym, patient_id=record.id,
                               channel=contact.channel, complaint=contact.complaint, uzovi=contact.uzovi,
                               submitted_by=caller.org, received_at=now)
        sr_id = new_id()
        request.service_request_id = sr_id
        service_request = front_door_service_request(request, service_request_id=sr_id, caller_org=caller.org, at=now)
        session.add(StoredResource(resource_type="ServiceRequest", id=sr_id, last_updated=now, owner_org=caller.org,
                                   patient_id=record.id, status="active", content=dumps(service_request)))
        session.add(ResourceIdentifier(resource_type="ServiceRequest", system=events.ACUTE_REQUEST_SYSTEM,
                                       value=request.id, resource_id=sr_id))
        session.add(request)
        linked = False
    if patient is not None:
        enqueue(session, events.patient_changed(patient, pseudonym=record.pseudonym,
                                                uzovi=contact.uzovi or request.uzovi, traceparent=traceparent))
    return request, linked


@dataclass
class TriageInput:
    urgency: str
    disposition: str
    assigned_organization: str
    note: str
    retriage_reason: str | None = None  # set only when a nurse deliberately triages a triaged request again
    closed_reason: str | None = None  # why the organisation is chosen although closed at the due time


async def _provider_of(session: AsyncSession, token: str, disposition: str) -> configuration.Provider:
    """The directory entry of the chosen organisation, when it provides the chosen follow-up action (SPEC §6:
    the directory decides); else FhirError 422 naming the organisations that do provide it."""
    providers = await configuration.providers(session)
    found = next((p for p in providers if p.token == token), None)
    if found is not None and disposition in found.dispositions:
        return found
    offering = ", ".join(p.name for p in providers if disposition in p.dispositions) or "none"
    name = found.name if found is not None else token
    raise FhirError(422, Issue("error", "business-rule",
                               f"{name} does not provide {DISPOSITIONS[disposition]} ({disposition}) according to the "
                               f"directory; organisations that do: {offering}", ("assigned_organization",)))


async def triage(session: AsyncSession, *, request_id: str, decision: TriageInput, caller: Caller,
                 codesystem_base: str, traceparent: str | None) -> AcuteRequest:
    issues = []
    for name, value in (("urgency", decision.urgency), ("disposition", decision.disposition),
                        ("assigned_organization", decision.assigned_organization)):
        if not value.strip():  # the console preselects nothing: an empty choice is the nurse's to make
            issues.append(Issue("error", "required", f"{name} must be chosen", (name,)))
    if issues:
        raise FhirError(422, issues)
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
    provider = await _provider_of(session, org.token, decision.disposition)
    # The request (locked), how many contacts are linked to it and its referral's text, in one statement.
    linked_count = select(func.count()).select_from(LinkedContact).where(
        LinkedContact.acute_request_id == AcuteRequest.id).scalar_subquery()
    referral_content = select(StoredResource.content).where(
        StoredResource.resource_type == "ServiceRequest",
        StoredResource.id == AcuteRequest.service_request_id).scalar_subquery()
    found = (await session.execute(
        select(AcuteRequest, linked_count, referral_content).where(AcuteRequest.id == request_id)
        .with_for_update(of=AcuteRequest).execution_options(populate_existing=True))).first()
    if found is None:
        raise FhirError(404, Issue("error", "not-found", f"acute request {request_id} does not exist"))
    request, linked, content = found
    retriage = request.status == "triaged" and bool((decision.retriage_reason or "").strip())
    if request.status != "open" and not retriage:
        raise FhirError(409, Issue("error", "conflict", f"acute request {request_id} is already {request.status}; "
                                                        "it is not triaged twice unless re-triage is chosen, "
                                                        "with a reason"))
    # Read before the request changes: a query after would flush it, and due_at would be a second UPDATE.
    targets = await configuration.targets(session)
    complaint = _reason_in(content, request.complaint)
    due = due_by(decision.urgency, _aware(request.received_at), targets)
    closed_reason = (decision.closed_reason or "").strip() or None
    if not provider.open_at(due):
        if closed_reason is None:
            raise FhirError(422, Issue(
                "error", "business-rule",
                f"{provider.name} is closed at the due time {due.astimezone(AMSTERDAM):%d-%m %H:%M} (hours "
                f"{provider.hours}{', working days only' if provider.weekdays_only else ''}): choose an organisation "
                "that is open then, or give closed_reason to route there anyway", ("closed_reason",)))
    else:
        closed_reason = None  # a reason is recorded only where it was needed
    now = _now()
    request.status = "triaged"
    request.urgency = decision.urgency
    request.disposition = decision.disposition
    request.assigned_org = org.token
    request.triaged_at = now
    request.triaged_by = caller.subject
    request.due_at = due
    request.received_at = _aware(request.received_at)
    session.add(request)
    await shared_rows.insert(session, TriageDecision.__table__, [{  # type: ignore[attr-defined]
        "acute_request_id": request.id, "urgency": decision.urgency, "disposition": decision.disposition,
        "assigned_org": org.token, "note": decision.note, "decided_by": caller.subject, "decided_at": now,
        "retriage_reason": decision.retriage_reason if retriage else None, "closed_reason": closed_reason}])
    enqueue(session, events.triage_completed(request, note=decision.note, codesystem_base=codesystem_base,
                                             traceparent=traceparent, complaint=complaint, linked_contacts=linked,
                                             retriage_reason=decision.retriage_reason if retriage else None))
    return request


def _reason_in(referral_content: str | None, complaint: str) -> str:
    """The complaint in the partner's words (the reasons of the referral's ServiceRequest, stored as FHIR JSON
    text), else as recorded on the request."""
    reasons = [r.get("text", "") for r in (loads(referral_content).get("reasonCode", []) or []
                                           if referral_content else []) if isinstance(r, dict)]
    return "; ".join(r for r in reasons if r)[:2000] or complaint


async def history_of(session: AsyncSession, request: AcuteRequest) -> tuple[list[AcuteRequest], list[LinkedContact]]:
    """The patient's other acute requests and the contacts linked to this one: what the nurse must see first."""
    earlier = list((await session.execute(select(AcuteRequest).where(
        AcuteRequest.pseudonym == request.pseudonym, AcuteRequest.id != request.id)
        .order_by(AcuteRequest.received_at.desc()))).scalars())  # type: ignore[attr-defined]
    linked = list((await session.execute(select(LinkedContact).where(
        LinkedContact.acute_request_id == request.id).order_by(LinkedContact.received_at))).scalars())
    return earlier, linked


async def new_contacts_since_triage(session: AsyncSession, requests: list[AcuteRequest]) -> set[str]:
    """The ids of those triaged requests to which a contact was linked after their (latest) triage: the nurse
    should read what was said before the request is left as it is."""
    triaged = {r.id: _aware(r.triaged_at) for r in requests if r.triaged_at is not None}
    if not triaged:
        return set()
    rows = await session.execute(select(LinkedContact.acute_request_id, LinkedContact.received_at).where(
        LinkedContact.acute_request_id.in_(list(triaged))))  # type: ignore[attr-defined]
    return {rid for rid, at in rows if _aware(at) > triaged[rid]}


async def request_details(session: AsyncSession, request_id: str) -> tuple[AcuteRequest, list[LinkedContact],
                                                                              list[TriageDecision]]:
    """One acute request with its linked contacts and its triages, oldest first (SPEC §4
    `GET /api/v1/requests/{id}`); FhirError 404 for an unknown id."""
    request = await session.get(AcuteRequest, request_id)
    if request is None:
        raise FhirError(404, Issue("error", "not-found", f"acute request {request_id} does not exist"))
    _, contacts = await history_of(session, request)
    decisions = list((await session.execute(select(TriageDecision).where(
        TriageDecision.acute_request_id == request_id).order_by(TriageDecision.decided_at))).scalars())
    return request, contacts, decisions


async def find_patients(session: AsyncSession, *, bsn: str | None, name: str | None,
                        birth_date: str | None) -> list[PatientRecord]:
    """Lookup for a phone or walk-in contact: by BSN, or by name and birth date together."""
    if bsn:
        query = select(PatientRecord).where(PatientRecord.bsn == bsn)
    elif name and birth_date:
        query = select(PatientRecord).where(PatientRecord.birth_date == birth_date,
                                            PatientRecord.display_name.icontains(name.strip(), autoescape=True))
    else:
        return []
    return list((await session.execute(query.limit(20))).scalars())


async def worklist(session: AsyncSession, *, statuses: tuple[str, ...]) -> list[AcuteRequest]:
    rows = list((await session.execute(select(AcuteRequest).where(
        AcuteRequest.status.in_(statuses)))).scalars())  # type: ignore[attr-defined]
    return sorted(rows, key=lambda r: worklist_rank(urgency=r.urgency, referral_priority=r.referral_priority,
                                                    received_at=_aware(r.received_at)))


async def close_request(session: AsyncSession, event: Event) -> None:
    """Coordination closed the acute request: it leaves every open list here."""
    closed = event.json()
    if not isinstance(closed, dict) or closed.get("resourceType") != "ServiceRequest" \
            or closed.get("status") != "completed" or not isinstance(closed.get("id"), str):
        raise PoisonMessage("acute-request-closed value is not a completed ServiceRequest")
    request_id = closed["id"]
    request = await session.get(AcuteRequest, request_id)
    if request is not None and request.status != "closed":
        request.status = "closed"
        request.closed_at = _now()
        session.add(request)


async def directory(session: AsyncSession) -> list[dict[str, Any]]:
    """The region's care providers as the front door configured them, with whether each is open now."""
    now = _now()
    return [{"name": p.name, "identifier": p.identifier, "token": p.token, "kind": p.kind,
             "dispositions": list(p.dispositions), "hours": p.hours, "weekdays_only": p.weekdays_only,
             "open_now": p.open_at(now)} for p in await configuration.providers(session)]


@dataclass
class ReadResult:
    resource: dict[str, Any]
    patient: str | None  # the pseudonym of the resource's patient
    grant: str | None  # "Task/<id>" when a treatment grant opened the resource (access.py), else None


async def read_resource(session: AsyncSession, *, resource_type: str, resource_id: str, caller: Caller,
                        treatment_window: timedelta, version: str | None = None) -> ReadResult:
    """The resource (at `version` when given), the pseudonym of its patient and the grant it was read on.

    `treatment_window`: how long an ended treatment grant still opens data. Raises FhirError 404, the same as
    for an unknown id, when the caller may not read it.
    """
    row = await session.get(StoredResource, (resource_type, resource_id))
    decided = await access.decide(session, caller=caller, rows=[row], at=_now(),
                                  window=treatment_window) if row is not None else {}
    if row is None or (resource_type, resource_id) not in decided:
        raise FhirError(404, Issue("error", "not-found", f"{resource_type}/{resource_id} is not known"))
    if version is not None and version != str(row.version_id):
        raise FhirError(404, Issue("error", "not-found", f"version {version} of {resource_type}/{resource_id} "
                                                         "is not known"))
    return ReadResult(loads(row.content), await pseudonym_of(session, row.patient_id),
                      decided[(resource_type, resource_id)].grant)


async def pseudonym_of(session: AsyncSession, patient_id: str | None) -> str | None:
    """The cross-service patient reference of a local Patient id (for audit events and events)."""
    record = await session.get(PatientRecord, patient_id) if patient_id else None
    return record.pseudonym if record else None


@dataclass
class SearchPage:
    resources: list[dict[str, Any]]
    total: int
    grants: list[str] = field(default_factory=list)  # the Tasks whose treatment grants opened resources found


def patient_key(value: str) -> str | None:
    """`Patient/<id>`, `<id>` or the Patient's absolute URL: the local id; a reference to another type matches
    nothing."""
    kind, _, key = value.rpartition("/")
    return key or None if not kind or kind == "Patient" or kind.endswith("/Patient") else None


def _identifier_condition(criterion: search.Criterion) -> ColumnElement[bool]:
    """identifier: a ServiceRequest with an identifier matching one of the tokens; `:not` one without any such
    identifier; `:missing` one without (true) or with (false) any identifier."""
    of_requests = select(ResourceIdentifier.resource_id).where(ResourceIdentifier.resource_type == "ServiceRequest")
    if criterion.modifier == "missing":
        has_any = StoredResource.id.in_(of_requests)  # type: ignore[attr-defined]
        return not_(has_any) if criterion.missing else has_any
    matched = StoredResource.id.in_(  # type: ignore[attr-defined]
        of_requests.where(or_(*(_token(token) for token in criterion.values))))
    return not_(matched) if criterion.modifier == "not" else matched


SERVICE_REQUEST_SEARCH = {parameter.name: parameter for parameter in (
    search.token("_id", StoredResource.id, documentation="The ServiceRequest's logical id."),
    search.reference("patient", StoredResource.patient_id, read=patient_key,
                     documentation="The Patient stored here: Patient/<id>, <id> or its absolute URL."),
    search.token("status", StoredResource.status, system="http://hl7.org/fhir/request-status",
                 documentation="ServiceRequest.status: a code, or http://hl7.org/fhir/request-status|<code>."),
    search.SearchParameter("identifier", "token", "ServiceRequest.identifier: system|value, system| (any value of "
                           "that system) or value (in any system); :not matches a ServiceRequest with none of them.",
                           _identifier_condition, ("not", "missing")),
    search.date_parameter("_lastUpdated", StoredResource.last_updated,
                          documentation="meta.lastUpdated: when the ServiceRequest was stored."),
)}


async def search_service_requests(session: AsyncSession, *, caller: Caller, request: search.Search,
                                  treatment_window: timedelta) -> SearchPage:
    """One page of the ServiceRequests the caller may see that meet every criterion (`SERVICE_REQUEST_SEARCH`),
    newest first, and how many match in all.

    The caller may see what access.decide allows (SPEC §10), with treatment grants ended less than
    `treatment_window` ago; `grants` names the Tasks whose grants opened what was found.
    """
    now = _now()
    query = select(StoredResource).where(StoredResource.resource_type == "ServiceRequest",
                                         access.findable_service_requests(caller, at=now, window=treatment_window),
                                         *request.conditions(SERVICE_REQUEST_SEARCH))
    page = await search.fetch(session, query, count=request.count, offset=request.offset,
                              order_by=(StoredResource.last_updated.desc(), StoredResource.id.desc()))  # type: ignore[attr-defined]
    decided = await access.decide(session, caller=caller, rows=page.rows, at=now, window=treatment_window)
    found = [r for r in page.rows if (r.resource_type, r.id) in decided]
    grants = dict.fromkeys(g for r in found if (g := decided[(r.resource_type, r.id)].grant))
    return SearchPage([loads(r.content) for r in found], page.total, list(grants))


def _token(token: str) -> ColumnElement[bool]:
    """`system|value`, `system|` (any value of that system) or `value` (in any system)."""
    if "|" not in token:
        return ResourceIdentifier.value == token  # type: ignore[return-value]
    system, _, value = token.partition("|")
    condition = ResourceIdentifier.system == system
    return and_(condition, ResourceIdentifier.value == value) if value else condition  # type: ignore[return-value]
