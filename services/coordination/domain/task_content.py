"""What a Task says: what to do and for whom (SPEC §7), built from the front door's routing order.

Pure: the routing order (the triage-completed ServiceRequest) in, the FHIR R4 Task out. `Task.for` and
`Task.focus` are absolute URLs on the front door's FHIR base, the pseudonym stays as the identifier on `for`;
`description` is the complaint on one line, `note` the triage note, and `input` carries the urgency, its target
time, the referring organisation and the patient's contact phone, each typed by the product's own code system
`<codesystem base>task-input`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.identifiers import PSEUDONYM_SYSTEM

ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
TASK_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/task"
TASK_INPUT = "task-input"
INPUT_LABELS = {"urgency": "urgentie", "target-time": "streeftijd", "referrer": "verwijzer",
                "contact-phone": "telefoonnummer patiënt"}
DESCRIPTION_LENGTH = 200


@dataclass(frozen=True)
class RoutingOrder:
    """The parts of a triage-completed ServiceRequest a Task is made of."""

    request_id: str
    pseudonym: str
    urgency: str
    code: dict[str, Any]  # the follow-up action, a CodeableConcept
    priority: str
    owner: str  # "system|value"
    requester: str
    due: datetime  # UTC
    patient_id: str | None  # the front door's Patient id
    service_request_id: str | None  # the front door's ServiceRequest: the partner's referral or its own
    complaint: str
    note: str
    referrer: dict[str, Any] | None  # a Reference (identifier and display)
    retriage_reason: str | None


def _org_token(reference: dict[str, Any]) -> str:
    ident = reference.get("identifier") or {}
    return f"{ident.get('system', '')}|{ident.get('value', '')}"


def _extension(order: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((e for e in order.get("extension", []) or [] if str(e.get("url", "")).endswith(f"/{name}")), None)


def read_order(order: dict[str, Any]) -> RoutingOrder:
    """The routing order's parts; raises KeyError, IndexError, TypeError or ValueError when it is not one."""
    subject = order["subject"]
    reference = str(subject.get("reference") or "")
    based_on = next((str(b["reference"]) for b in order.get("basedOn", []) or []
                     if str(b.get("reference", "")).startswith("ServiceRequest/")), "")
    referrer = _extension(order, "referring-organization")
    retriage = _extension(order, "retriage-reason")
    return RoutingOrder(
        request_id=str(order["id"]),
        pseudonym=str(subject["identifier"]["value"]),
        urgency=str(order["category"][0]["coding"][0]["code"]),
        code=order["code"],
        priority=str(order.get("priority", "routine")),
        owner=_org_token(order["performer"][0]),
        requester=_org_token(order["requester"]),
        # Stored in UTC: a due time sent with an Amsterdam offset must compare correctly with now.
        due=datetime.fromisoformat(order["occurrenceDateTime"]).astimezone(UTC),
        patient_id=reference.removeprefix("Patient/") if reference.startswith("Patient/") else None,
        service_request_id=based_on.removeprefix("ServiceRequest/") or None,
        complaint="; ".join(str(r["text"]) for r in order.get("reasonCode", []) or [] if r.get("text")),
        note="\n".join(str(n["text"]) for n in order.get("note", []) or [] if n.get("text")),
        referrer=referrer.get("valueReference") if referrer else None,
        retriage_reason=retriage.get("valueString") if retriage else None,
    )


def one_line(text: str, width: int = DESCRIPTION_LENGTH) -> str:
    """The text on one line (whitespace collapsed), cut at `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1].rstrip() + "…"


def _input(codesystem_base: str, code: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"type": {"coding": [{"system": f"{codesystem_base}{TASK_INPUT}", "code": code}],
                     "text": INPUT_LABELS[code]}, **value}


def contact_phone_input(phone: str, codesystem_base: str) -> dict[str, Any]:
    return _input(codesystem_base, "contact-phone", {"valueContactPoint": {"system": "phone", "value": phone}})


def _identifier_reference(token: str) -> dict[str, Any]:
    system, _, value = token.partition("|")
    return {"identifier": {"system": system, "value": value}}


def task_content(order: RoutingOrder, *, task_id: str, at: datetime, front_door_fhir_base: str,
                 codesystem_base: str, contact_phone: str | None) -> dict[str, Any]:
    """A new Task (version 1, requested) for the routing order; `front_door_fhir_base` without a trailing slash,
    e.g. "https://voordeur.example/fhir"; `contact_phone` from the patient coordination holds, if any."""
    base = front_door_fhir_base.rstrip("/")
    pseudonym = {"system": PSEUDONYM_SYSTEM, "value": order.pseudonym}
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": task_id,
        "meta": {"versionId": "1", "lastUpdated": at.isoformat()},
        "identifier": [{"system": TASK_SYSTEM, "value": task_id}],
        "basedOn": [{"identifier": {"system": ACUTE_REQUEST_SYSTEM, "value": order.request_id}}],
        "status": "requested",
        "intent": "order",
        "priority": order.priority,
        "code": order.code,
        "for": {**({"reference": f"{base}/Patient/{order.patient_id}"} if order.patient_id else {}),
                "identifier": pseudonym},
        "authoredOn": at.isoformat(),
        "lastModified": at.isoformat(),
        "requester": _identifier_reference(order.requester),
        "owner": _identifier_reference(order.owner),
        "restriction": {"period": {"end": order.due.isoformat()}},
    }
    if order.service_request_id:
        task["focus"] = {"reference": f"{base}/ServiceRequest/{order.service_request_id}"}
    else:  # a request from before the front door kept a ServiceRequest of its own for every contact
        task["focus"] = {"identifier": {"system": ACUTE_REQUEST_SYSTEM, "value": order.request_id}}
    if order.complaint:
        task["description"] = one_line(order.complaint)
    if order.note:
        task["note"] = [{"text": order.note}]
    inputs = [
        _input(codesystem_base, "urgency",
               {"valueCodeableConcept": {"coding": [{"system": f"{codesystem_base}urgency", "code": order.urgency}]}}),
        _input(codesystem_base, "target-time", {"valueDateTime": order.due.isoformat()}),
    ]
    if order.referrer:
        inputs.append(_input(codesystem_base, "referrer", {"valueReference": order.referrer}))
    if contact_phone:
        inputs.append(contact_phone_input(contact_phone, codesystem_base))
    task["input"] = inputs
    return task


def with_contact_phone(task: dict[str, Any], phone: str | None, codesystem_base: str) -> dict[str, Any] | None:
    """The Task with its contact-phone input set to `phone` (removed when None); None when that changes nothing."""
    def is_phone(item: dict[str, Any]) -> bool:
        return any(c.get("code") == "contact-phone" and str(c.get("system", "")).endswith(f"/{TASK_INPUT}")
                   for c in (item.get("type") or {}).get("coding", []))

    inputs = list(task.get("input", []) or [])
    kept = [i for i in inputs if not is_phone(i)]
    wanted = kept + ([contact_phone_input(phone, codesystem_base)] if phone else [])
    if wanted == inputs:
        return None
    updated = dict(task)
    if wanted:
        updated["input"] = wanted
    else:
        updated.pop("input", None)
    return updated


SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED",
             "display": "subsetted"}


def referral_summary(routing: RoutingOrder, *, front_door_fhir_base: str, closed: bool) -> dict[str, Any] | None:
    """The front door's ServiceRequest a Task's focus names, as far as coordination knows it from the routing
    order: its id, the acute request, the patient, the referring organisation and the complaint. Tagged
    SUBSETTED: the front door holds the whole resource. None when the order names no ServiceRequest."""
    if not routing.service_request_id:
        return None
    base = front_door_fhir_base.rstrip("/")
    summary: dict[str, Any] = {
        "resourceType": "ServiceRequest", "id": routing.service_request_id, "meta": {"tag": [SUBSETTED]},
        "identifier": [{"system": ACUTE_REQUEST_SYSTEM, "value": routing.request_id}],
        "status": "completed" if closed else "active", "intent": "order",
        "subject": {**({"reference": f"{base}/Patient/{routing.patient_id}"} if routing.patient_id else {}),
                    "identifier": {"system": PSEUDONYM_SYSTEM, "value": routing.pseudonym}},
    }
    if routing.referrer:
        summary["requester"] = routing.referrer
    if routing.complaint:
        summary["reasonCode"] = [{"text": routing.complaint}]
    return summary
