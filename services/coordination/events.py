"""Events coordination publishes: task-changed (Task), contact-delivered (Encounter), acute-request-closed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.bus.envelope import Event
from shared.bus.topics import ACUTE_REQUEST_CLOSED, CONTACT_DELIVERED, TASK_CHANGED, TASK_OVERDUE
from shared.identifiers import PSEUDONYM_SYSTEM

SOURCE = "/regiozorg/coordination"
ACUTE_REQUEST_SYSTEM = "https://regiozorg.example/fhir/NamingSystem/acute-request"
CLOSED_AT_EXTENSION = "https://regiozorg.example/fhir/StructureDefinition/closed-at"


def task_changed(task: dict[str, Any], *, pseudonym: str, traceparent: str | None) -> Event:
    return Event.of(topic=TASK_CHANGED, key=pseudonym, source=SOURCE, subject=f"Task/{task['id']}", payload=task,
                    traceparent=traceparent)


def task_overdue(task: dict[str, Any], *, pseudonym: str) -> Event:
    """A Task not done by its urgency's target time (restriction.period.end)."""
    return Event.of(topic=TASK_OVERDUE, key=pseudonym, source=SOURCE, subject=f"Task/{task['id']}", payload=task)


def contact_delivered(encounter: dict[str, Any], *, pseudonym: str, traceparent: str | None) -> Event:
    return Event.of(topic=CONTACT_DELIVERED, key=pseudonym, source=SOURCE, subject=f"Encounter/{encounter['id']}",
                    payload=encounter, traceparent=traceparent)


def acute_request_closed(*, request_id: str, pseudonym: str, closed_at: datetime, encounter_ids: list[str],
                         traceparent: str | None) -> Event:
    """The acute request as a completed ServiceRequest, listing the Encounters delivered for it."""
    value = {
        "resourceType": "ServiceRequest",
        "id": request_id,
        "identifier": [{"system": ACUTE_REQUEST_SYSTEM, "value": request_id}],
        "extension": [{"url": CLOSED_AT_EXTENSION, "valueDateTime": closed_at.isoformat()}],
        "status": "completed",
        "intent": "order",
        "subject": {"identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}},
        "supportingInfo": [{"reference": f"Encounter/{eid}"} for eid in sorted(encounter_ids)],
    }
    return Event.of(topic=ACUTE_REQUEST_CLOSED, key=pseudonym, source=SOURCE, subject=f"ServiceRequest/{request_id}",
                    payload=value, traceparent=traceparent)
