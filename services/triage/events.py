"""Events the front door publishes: a referral received and a triage completed (FHIR ServiceRequest values), and
the patient as the front door knows them (FHIR Patient, for coordination only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.triage.domain.rules import DISPOSITIONS, PRIORITY_OF_URGENCY
from services.triage.models import AcuteRequest
from shared.bus.envelope import Event
from shared.bus.topics import (
    CONTACT_LINKED,
    LINKED_CONTACT_RECORDED,
    PATIENT_CHANGED,
    REFERRAL_RECEIVED,
    TRIAGE_COMPLETED,
)
from shared.identifiers import PSEUDONYM_SYSTEM, UZOVI_SYSTEM
from shared.region import FRONT_DOOR, organisation

SOURCE = "/regiozorg/triage"
ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
RECEIVED_AT_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/received-at"
CHANNEL_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/intake-channel"
OPEN_DBC_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/open-dbc"
RETRIAGE_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/retriage-reason"
# How many later referrals, calls or walk-ins were linked to this open request instead of triaged again.
LINKED_CONTACTS_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/linked-contacts"
# Who made a linked contact (patient, relative, carer, professional) and the number to call back.
CALLER_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/caller"
CALLBACK_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/callback-phone"
# The partner that sent the referral (the front door itself for a phone call or walk-in).
REFERRER_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/referring-organization"
# The patient's insurer, as the front door last heard it (on the Patient of patient-changed).
INSURER_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/insurer"


def _subject(pseudonym: str) -> dict[str, Any]:
    return {"identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}}


def contact_linked(request: AcuteRequest, *, channel: str, received_at: datetime, linked_so_far: int,
                   traceparent: str | None) -> Event:
    """A later referral, call or walk-in linked to the open `request` instead of triaged again: a FHIR Communication
    naming the acute request (`basedOn`), the patient by pseudonym, when (`sent`, UTC) and the channel (`medium`
    text), with the request's running count of linked contacts (`linked-contacts`, 1 for the first). No caller,
    complaint or callback number: billing's evaluation consumes it (double triage avoided, README "Evaluating the
    experiment"), and billing never receives patient data."""
    value = {"resourceType": "Communication", "id": f"{request.id}-{linked_so_far}", "status": "completed",
             "basedOn": [{"identifier": {"system": ACUTE_REQUEST_SYSTEM, "value": request.id}}],
             "subject": _subject(request.pseudonym), "sent": received_at.astimezone(UTC).isoformat(),
             "medium": [{"text": channel}],
             "extension": [{"url": LINKED_CONTACTS_EXTENSION, "valueInteger": linked_so_far}]}
    return Event.of(topic=CONTACT_LINKED, key=request.pseudonym, source=SOURCE,
                    subject=f"Communication/{value['id']}", payload=value, traceparent=traceparent)


def linked_contact_recorded(request: AcuteRequest, *, channel: str, received_at: datetime, linked_so_far: int,
                            complaint: str, caller: str | None, callback_phone: str | None,
                            traceparent: str | None) -> Event:
    """The linked contact of `contact_linked` (same Communication id) with its words, for coordination only (SPEC
    §10: patient data in values to the service that coordinates, never in keys or headers): the complaint as
    `payload[0].contentString` (absent when empty), who called as the `caller` extension (valueCode `patient`,
    `relative`, `carer` or `professional`) and the callback number as the `callback-phone` extension
    (valueContactPoint). The key is the pseudonym; billing never consumes this topic."""
    value: dict[str, Any] = {
        "resourceType": "Communication", "id": f"{request.id}-{linked_so_far}", "status": "completed",
        "basedOn": [{"identifier": {"system": ACUTE_REQUEST_SYSTEM, "value": request.id}}],
        "subject": {**({"reference": f"Patient/{request.patient_id}"} if request.patient_id else {}),
                    **_subject(request.pseudonym)},
        "sent": received_at.astimezone(UTC).isoformat(), "medium": [{"text": channel}],
        "extension": [{"url": LINKED_CONTACTS_EXTENSION, "valueInteger": linked_so_far}]}
    if caller:
        value["extension"].append({"url": CALLER_EXTENSION, "valueCode": caller})
    if callback_phone:
        value["extension"].append({"url": CALLBACK_EXTENSION,
                                   "valueContactPoint": {"system": "phone", "value": callback_phone}})
    if complaint:
        value["payload"] = [{"contentString": complaint}]
    return Event.of(topic=LINKED_CONTACT_RECORDED, key=request.pseudonym, source=SOURCE,
                    subject=f"Communication/{value['id']}", payload=value, traceparent=traceparent)


def referral_received(request: AcuteRequest, service_request: dict[str, Any], *, traceparent: str | None) -> Event:
    """The partner's ServiceRequest with the patient replaced by the pseudonym: other services never see a BSN."""
    value = dict(service_request)
    value["subject"] = _subject(request.pseudonym)
    value["identifier"] = [*service_request.get("identifier", []),
                           {"system": ACUTE_REQUEST_SYSTEM, "value": request.id}]
    return Event.of(topic=REFERRAL_RECEIVED, key=request.pseudonym, source=SOURCE,
                    subject=f"ServiceRequest/{service_request['id']}", payload=value, traceparent=traceparent)


def organisation_reference(token: str) -> dict[str, Any]:
    """A logical reference to an organisation ("system|value"), with its name when the region knows it."""
    system, _, value = token.partition("|")
    if not (system and value):
        return {"display": token}
    known = organisation(system, value)
    return {"identifier": {"system": system, "value": value}, **({"display": known.name} if known else {})}


def patient_changed(patient: dict[str, Any], *, pseudonym: str, uzovi: str | None, traceparent: str | None) -> Event:
    """The FHIR Patient as the front door holds it (its id, BSN, name, birth date, address, telecom, GP), with the
    pseudonym added as an identifier and the insurer (UZOVI) as the `insurer` extension.

    Published whenever a referral or a phone or walk-in contact names the patient, so coordination knows whom it
    coordinates. Patient data rides in the value only: the key is the pseudonym and the subject `Patient/<id>`.
    Only coordination consumes it; billing never must (SPEC §10).
    """
    value = dict(patient)
    value["identifier"] = [{"system": PSEUDONYM_SYSTEM, "value": pseudonym},
                           *(i for i in patient.get("identifier", []) or [] if i.get("system") != PSEUDONYM_SYSTEM)]
    extensions = [e for e in patient.get("extension", []) or [] if e.get("url") != INSURER_EXTENSION]
    if uzovi:
        extensions.append({"url": INSURER_EXTENSION,
                           "valueReference": organisation_reference(f"{UZOVI_SYSTEM}|{uzovi}")})
    if extensions:
        value["extension"] = extensions
    else:
        value.pop("extension", None)
    return Event.of(topic=PATIENT_CHANGED, key=pseudonym, source=SOURCE, subject=f"Patient/{patient['id']}",
                    payload=value, traceparent=traceparent)


def triage_completed(request: AcuteRequest, *, note: str, codesystem_base: str, traceparent: str | None,
                     retriage_reason: str | None = None, complaint: str = "", linked_contacts: int = 0) -> Event:
    """The routing order: who must do what for this acute request, by when, and what coordination needs for the
    Task besides: the complaint (`reasonCode`), the triage note, the referring organisation (extension), the
    front door's Patient (`subject.reference`) and ServiceRequest (`basedOn`), and for the evaluation the number
    of contacts linked to the request so far (`linked-contacts`, only when there are any). Nothing here names the
    patient: billing reads this topic too."""
    assert request.urgency and request.disposition and request.assigned_org and request.due_at and request.triaged_at
    org_system, org_value = request.assigned_org.split("|", 1)
    order: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": request.id,
        "identifier": [{"system": ACUTE_REQUEST_SYSTEM, "value": request.id}],
        "extension": [
            {"url": RECEIVED_AT_EXTENSION, "valueDateTime": request.received_at.isoformat()},
            {"url": CHANNEL_EXTENSION, "valueCode": request.channel},
        ],
        "status": "active",
        "intent": "order",
        "priority": PRIORITY_OF_URGENCY[request.urgency],
        "category": [{"coding": [{"system": f"{codesystem_base}urgency", "code": request.urgency}]}],
        "code": {"coding": [{"system": f"{codesystem_base}disposition", "code": request.disposition,
                             "display": DISPOSITIONS[request.disposition]}]},
        "subject": {**({"reference": f"Patient/{request.patient_id}"} if request.patient_id else {}),
                    **_subject(request.pseudonym)},
        "occurrenceDateTime": request.due_at.isoformat(),
        "authoredOn": request.triaged_at.isoformat(),
        "requester": {"identifier": {"system": FRONT_DOOR.system, "value": FRONT_DOOR.value},
                      "display": FRONT_DOOR.name},
        "performer": [{"identifier": {"system": org_system, "value": org_value}}],
    }
    order["extension"].append({"url": REFERRER_EXTENSION,
                               "valueReference": organisation_reference(request.submitted_by)})
    if complaint:
        order["reasonCode"] = [{"text": complaint}]
    if request.open_dbc:
        order["extension"].append({"url": OPEN_DBC_EXTENSION, "valueBoolean": True})
    if linked_contacts:  # double triage avoided: billing's evaluation counts them
        order["extension"].append({"url": LINKED_CONTACTS_EXTENSION, "valueInteger": linked_contacts})
    if retriage_reason:  # coordination cancels what was not started under the earlier triage
        order["extension"].append({"url": RETRIAGE_EXTENSION, "valueString": retriage_reason})
    if request.service_request_id:
        order["basedOn"] = [{"reference": f"ServiceRequest/{request.service_request_id}"}]
    if request.uzovi:
        order["contained"] = [{"resourceType": "Coverage", "id": "coverage", "status": "active",
                               "beneficiary": _subject(request.pseudonym),
                               "payor": [{"identifier": {"system": UZOVI_SYSTEM, "value": request.uzovi}}]}]
        order["insurance"] = [{"reference": "#coverage"}]
    if note:
        order["note"] = [{"text": note}]
    return Event.of(topic=TRIAGE_COMPLETED, key=request.pseudonym, source=SOURCE,
                    subject=f"ServiceRequest/{request.id}", payload=order, traceparent=traceparent)
